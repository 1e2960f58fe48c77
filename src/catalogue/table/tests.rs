use std::path::PathBuf;

use super::*;

struct Dir(PathBuf);

impl Dir {
    fn new() -> Self {
        let d = std::env::temp_dir().join(format!("vetter-cat-{}", crate::random_hex(6)));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, body: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, body).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_all(path: &Path, choice: &ColumnChoice) -> Result<(Layout, Vec<Source>), TableError> {
    let mut r = TableReader::open(path, choice)?;
    let mut out = Vec::new();
    while let Some(s) = r.next_source() {
        out.push(s?);
    }
    Ok((r.layout().clone(), out))
}

fn err(path: &Path) -> String {
    read_all(path, &ColumnChoice::default())
        .expect_err("refused")
        .to_string()
}

#[test]
fn csv_columns_are_guessed_and_units_read_from_the_header() {
    let d = Dir::new();
    let p = d.file(
        "racs.csv",
        "# RACS sample\nsource_name,RA [deg],Dec [deg],flux_peak [mJy/beam],flag\n\
         RACS J0000-1,359.5,-30.25,12.5,ok\nRACS J0001-2,0.25,-89.9,,bad\n",
    );
    let (layout, sources) = read_all(&p, &ColumnChoice::default()).unwrap();
    assert_eq!(
        layout.chosen,
        ["source_name", "RA", "Dec"].map(String::from)
    );
    assert_eq!(
        layout.kept,
        vec![KeptColumn {
            name: "flux_peak".into(),
            unit: "mJy/beam".into()
        }]
    );
    assert_eq!(sources.len(), 2);
    assert_eq!(sources[0].name, "RACS J0000-1");
    assert_eq!(sources[0].pos, SkyPos::new(359.5, -30.25).unwrap());
    assert_eq!(sources[0].vals, vec![Some(12.5)]);
    assert_eq!(sources[1].vals, vec![None]);
}

#[test]
fn csv_bad_rows_are_named_by_line() {
    let d = Dir::new();
    let p = d.file("a.csv", "name,ra,dec,s\nA,10,20,1\n# note\nB,10,95,2\n");
    assert!(err(&p).starts_with("line 4: dec: "), "{}", err(&p));
    let p = d.file("b.csv", "name,ra,dec,s\nA,10,20,1\nB,10,20,x1\n");
    // "s" is not numeric in the first rows, so it is not kept; no error.
    assert!(read_all(&p, &ColumnChoice::default()).is_ok());
    let p = d.file("c.csv", "name,ra,dec\nA,10,20\nB,abc,20\n");
    assert!(err(&p).starts_with("line 3: ra: "), "{}", err(&p));
    let p = d.file("d.csv", "name,ra,dec\nA,10,20\n,11,21\n");
    assert_eq!(err(&p), "line 3: name is blank");
    let p = d.file("e.csv", "name,ra,dec\nA,10,20,5\n");
    assert_eq!(err(&p), "line 2: 4 values where the header has 3 columns");
}

#[test]
fn csv_without_a_position_column_asks_for_the_flag() {
    let d = Dir::new();
    let p = d.file("a.csv", "name,x,y\nA,1,2\n");
    let e = err(&p);
    assert!(e.contains("--ra"), "{e}");
    // Given by flag, case-insensitively when unambiguous.
    let choice = ColumnChoice {
        ra: Some("X".into()),
        dec: Some("y".into()),
        name: None,
    };
    let (_, s) = read_all(&p, &choice).unwrap();
    assert_eq!(s[0].pos, SkyPos::new(1.0, 2.0).unwrap());
    let choice = ColumnChoice {
        ra: Some("nope".into()),
        ..choice
    };
    let e = read_all(&p, &choice).err().unwrap().to_string();
    assert!(
        e.starts_with("--ra \"nope\": the file has no such column"),
        "{e}"
    );
}

#[test]
fn sexagesimal_and_hour_positions_are_read() {
    let d = Dir::new();
    let p = d.file(
        "psr.csv",
        "PSRJ,RAJ,DECJ,P0 (s)\nJ0437-4715,04:37:15.9,-47:15:09.1,0.00575\n",
    );
    let choice = ColumnChoice {
        ra: Some("RAJ".into()),
        dec: Some("DECJ".into()),
        name: None,
    };
    let (layout, s) = read_all(&p, &choice).unwrap();
    assert_eq!(layout.chosen[0], "PSRJ");
    assert!((s[0].pos.ra.degrees() - 69.316_25).abs() < 1e-6);
    assert!((s[0].pos.dec.degrees() + 47.252_527_8).abs() < 1e-6);
    let p = d.file("h.csv", "name,ra (h),dec\nA,12,-10\n");
    let (_, s) = read_all(&p, &ColumnChoice::default()).unwrap();
    assert_eq!(s[0].pos.ra.degrees(), 180.0);
}

const VOTABLE: &str = r#"<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3">
 <RESOURCE><TABLE name="gleam">
  <FIELD name="GLEAM" datatype="char" arraysize="*" ucd="meta.id;meta.main"/>
  <FIELD name="RAJ2000" datatype="double" unit="deg" ucd="pos.eq.ra;meta.main"/>
  <FIELD name="DEJ2000" datatype="double" unit="deg" ucd="pos.eq.dec;meta.main"/>
  <FIELD name="Fpwide" datatype="float" unit="Jy"><DESCRIPTION>flux</DESCRIPTION></FIELD>
  <FIELD name="n" datatype="int"><VALUES null="-1"/></FIELD>
  <DATA><TABLEDATA>
   <TR><TD>J000001-300000 &amp; co</TD><TD>0.004</TD><TD>-30.0</TD><TD>1.5</TD><TD>3</TD></TR>
   <TR><TD>J235959-895959</TD><TD>359.99</TD><TD>-89.99</TD><TD>NaN</TD><TD>-1</TD></TR>
  </TABLEDATA></DATA>
 </TABLE></RESOURCE>
</VOTABLE>"#;

#[test]
fn votable_fields_and_ucds_choose_the_columns() {
    let d = Dir::new();
    let p = d.file("g.vot", VOTABLE);
    let (layout, s) = read_all(&p, &ColumnChoice::default()).unwrap();
    assert_eq!(
        layout.chosen,
        ["GLEAM", "RAJ2000", "DEJ2000"].map(String::from)
    );
    assert_eq!(
        layout
            .kept
            .iter()
            .map(|k| k.unit.as_str())
            .collect::<Vec<_>>(),
        ["Jy", ""]
    );
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].name, "J000001-300000&co");
    assert_eq!(s[0].vals, vec![Some(1.5), Some(3.0)]);
    // NaN and the declared null are blanks.
    assert_eq!(s[1].vals, vec![None, None]);
}

#[test]
fn votable_problems_are_refused_with_the_row() {
    let d = Dir::new();
    let bad = VOTABLE.replace("<TD>-89.99</TD>", "<TD>-91</TD>");
    let p = d.file("bad.vot", &bad);
    assert!(err(&p).starts_with("row 2: DEJ2000: "), "{}", err(&p));
    let binary = VOTABLE.replace(
        "<TABLEDATA>",
        "<BINARY2><STREAM encoding=\"base64\">AAAA</STREAM></BINARY2><TABLEDATA>",
    );
    let p = d.file("bin.vot", &binary);
    assert!(err(&p).contains("BINARY2 serialisation"), "{}", err(&p));
    let p = d.file("cut.vot", &VOTABLE[..VOTABLE.find("</TABLEDATA>").unwrap()]);
    assert!(err(&p).contains("ends"), "{}", err(&p));
}

#[test]
fn fits_binary_tables_are_read_with_units_and_exact_ids() {
    use fitsio::tables::{ColumnDataType, ColumnDescription};
    let d = Dir::new();
    let p = d.0.join("gaia.fits");
    {
        let mut f = fitsio::FitsFile::create(&p).open().unwrap();
        let cols = [
            ColumnDescription::new("source_id")
                .with_type(ColumnDataType::LongLong)
                .create()
                .unwrap(),
            ColumnDescription::new("ra")
                .with_type(ColumnDataType::Double)
                .create()
                .unwrap(),
            ColumnDescription::new("dec")
                .with_type(ColumnDataType::Double)
                .create()
                .unwrap(),
            ColumnDescription::new("phot_g_mean_mag")
                .with_type(ColumnDataType::Float)
                .create()
                .unwrap(),
        ];
        let hdu = f.create_table("GAIA", &cols).unwrap();
        hdu.write_col(&mut f, "source_id", &[6917528443525529728i64, 42])
            .unwrap();
        hdu.write_col(&mut f, "ra", &[10.5f64, 200.25]).unwrap();
        hdu.write_col(&mut f, "dec", &[-45.0f64, 89.5]).unwrap();
        hdu.write_col(&mut f, "phot_g_mean_mag", &[12.5f32, f32::NAN])
            .unwrap();
        hdu.write_key(&mut f, "TUNIT4", "mag").unwrap();
    }
    let (layout, s) = read_all(&p, &ColumnChoice::default()).unwrap();
    assert_eq!(layout.chosen, ["source_id", "ra", "dec"].map(String::from));
    assert_eq!(
        layout.kept,
        vec![KeptColumn {
            name: "phot_g_mean_mag".into(),
            unit: "mag".into()
        }]
    );
    assert_eq!(s[0].name, "6917528443525529728");
    assert_eq!(s[0].vals, vec![Some(12.5)]);
    assert_eq!(s[1].vals, vec![None]);
    assert_eq!(s[1].pos, SkyPos::new(200.25, 89.5).unwrap());
}

#[test]
fn a_file_of_no_known_format_or_misnamed_is_refused() {
    let d = Dir::new();
    let p = d.file("x.fits", "name,ra,dec\n");
    assert!(err(&p).contains("does not start with SIMPLE"));
    let p = d.file("x.xml", "<html></html>");
    assert!(err(&p).contains("not a VOTable"));
    let p = d.file("dup.csv", "name,ra,dec,ra\nA,1,2,3\n");
    assert!(err(&p).contains("appears twice"));
}
