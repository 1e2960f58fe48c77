//! VOEvent 2.0 (IVOA Recommendation, July 2011): the packet with which the
//! team tells the community about a candidate it has settled as real, for
//! brokers and follow-up facilities.
//!
//! Pure: [`document`] turns what is known of a candidate ([`Facts`], read by
//! `db::voevent`) and the site's [`Settings`] into the XML, and refuses a
//! candidate the team has not settled as real. Every value goes through
//! quick-xml's writer, which escapes it; characters XML cannot hold at all
//! are replaced first. The tests validate what it writes against the IVOA's
//! schema (`tests/fixtures/voevent/`).
//!
//! What goes where:
//! - `Who`: the site's author IVORN, when the document was made, the author
//!   (the project's name as title, the configured short name and contact);
//! - `What`: the candidate, its project, observation and beam, the peak flux
//!   (where the project has one) and the team's classification in groups:
//!   the verdicts, the tags its reviewers gave, its association with a known
//!   source, the model's P(real);
//! - `WhereWhen`: the position (ICRS degrees) with an error circle, and the
//!   observation's start (UTC), in the `UTC-ICRS-TOPO` system;
//! - `How`: which pipeline found it;
//! - `Why`: the team's conclusion, with the model's P(real) as its
//!   probability. No `Citations`: each document stands alone.

use std::fmt;
use std::io;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;
use time::OffsetDateTime;

use crate::domain::consensus::Consensus;
use crate::domain::text::{file_stem, xml_clean};
use crate::domain::{CandidateId, SkyPos};

pub const NAMESPACE: &str = "http://www.ivoa.net/xml/VOEvent/v2.0";
const SCHEMA_LOCATION: &str =
    "http://www.ivoa.net/xml/VOEvent/v2.0 http://www.ivoa.net/xml/VOEvent/VOEvent-v2.0.xsd";
/// Times in UTC, positions in ICRS, seen from the telescope.
const COORD_SYSTEM: &str = "UTC-ICRS-TOPO";
/// The STC library's name for "somewhere on the Earth's surface".
const OBSERVATORY: &str = "GEOSURFACE";

/// `ivo://authority/resource`, the publisher's identifier that every
/// event's IVORN starts with (`VETTER_VOEVENT_AUTHORITY`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IvornBase(String);

impl IvornBase {
    /// The IVOA identifier rules, kept to the characters that need no
    /// escaping anywhere: an authority of three or more letters, digits
    /// and `-._~`, then a resource key of one or more such segments
    /// separated by `/`; no query, fragment or trailing `/`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("{s:?} is not an IVORN like ivo://example.org/vetter: {why}");
        let rest = s
            .strip_prefix("ivo://")
            .ok_or_else(|| bad("it must start with ivo://"))?;
        let (authority, key) = rest
            .split_once('/')
            .ok_or_else(|| bad("it needs a resource key after the authority"))?;
        let plain = |part: &str| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))
        };
        if authority.len() < 3 || !plain(authority) {
            return Err(bad(
                "the authority has 3 or more letters, digits, '-', '.', '_' or '~'",
            ));
        }
        if !key.split('/').all(plain) {
            return Err(bad(
                "the resource key is letters, digits, '-', '.', '_' or '~', with single '/' between them",
            ));
        }
        if s.len() > 200 {
            return Err(bad("it is longer than 200 characters"));
        }
        Ok(Self(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The IVORN of the event about one candidate: the base, then the
    /// project and the candidate's id as the local part. The same
    /// candidate always gets the same IVORN.
    pub fn candidate(&self, project: &str, id: CandidateId) -> String {
        format!("{}#{project}/{id}", self.0)
    }
}

/// What the event is: an observation, or a test that brokers pass on
/// without anyone acting on it (for trying out the path to a broker).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    #[default]
    Observation,
    Test,
}

impl Role {
    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "observation" => Ok(Role::Observation),
            "test" => Ok(Role::Test),
            other => Err(format!(
                "{other:?} is not a VOEvent role vetter writes: use observation or test"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Observation => "observation",
            Role::Test => "test",
        }
    }
}

/// Who answers for the events (`Who/Author`); each part is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Author {
    pub short_name: Option<String>,
    pub contact_name: Option<String>,
    pub contact_email: Option<String>,
}

/// The site's VOEvent settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub authority: IvornBase,
    pub role: Role,
    pub author: Author,
}

/// Everything a document says about one candidate.
#[derive(Debug, Clone)]
pub struct Facts {
    pub id: CandidateId,
    pub name: String,
    pub project_slug: String,
    pub project_name: String,
    pub observation: String,
    pub beam: Option<String>,
    pub pos: SkyPos,
    /// The radius of the error circle: the project's group radius, within
    /// which it takes two detections for one source.
    pub error_radius_arcsec: f64,
    /// The observation's start; without one the event has no time.
    pub time: Option<OffsetDateTime>,
    pub flux: Option<Flux>,
    pub team: Team,
    pub association: Option<Association>,
    pub model: Option<ModelScore>,
    /// The candidate's page, for the team's own readers.
    pub link: Option<String>,
}

/// The candidate's peak flux density and where it was read.
#[derive(Debug, Clone, PartialEq)]
pub struct Flux {
    pub value: f64,
    pub unit: String,
    pub source: FluxSource,
}

#[derive(Debug, Clone, PartialEq)]
pub enum FluxSource {
    /// The project's peak-flux metric (its label).
    Metric(String),
    /// The brightest point of the candidate's light curve, at this time.
    LightCurve(OffsetDateTime),
}

/// The reviewers' current verdicts and the tags they gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    pub n_real: i32,
    pub n_not_real: i32,
    pub n_unsure: i32,
    /// The project's settling rule (`consensus_k`).
    pub k: i16,
    /// Tags with the number of current ratings carrying each, most first.
    pub tags: Vec<(String, i32)>,
}

impl Team {
    pub fn consensus(&self) -> Consensus {
        Consensus::of(self.n_real, self.n_not_real, self.k.into())
    }
}

/// The known source the team associated the candidate with.
#[derive(Debug, Clone, PartialEq)]
pub struct Association {
    pub catalogue: String,
    pub source: String,
    pub separation_arcsec: f64,
}

/// The project's model's calibrated P(real) of the candidate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelScore {
    pub p_real: f32,
    pub version: i32,
}

/// A VOEvent, ready to download or send.
#[derive(Debug, Clone)]
pub struct Document {
    pub ivorn: String,
    /// `<candidate name>-voevent.xml`, safe in a `Content-Disposition`.
    pub file_name: String,
    pub xml: Vec<u8>,
}

/// No document: the team has not settled the candidate as real.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotSettledReal(pub Consensus);

impl fmt::Display for NotSettledReal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "A VOEvent is written only for a candidate the team has settled as real; \
             this one is {}.",
            self.0.label()
        )
    }
}

/// The VOEvent about a candidate the team has settled as real, made at
/// `issued`.
pub fn document(
    facts: &Facts,
    settings: &Settings,
    issued: OffsetDateTime,
) -> Result<Document, NotSettledReal> {
    let consensus = facts.team.consensus();
    if consensus != Consensus::SettledReal {
        return Err(NotSettledReal(consensus));
    }
    let ivorn = settings.authority.candidate(&facts.project_slug, facts.id);
    let mut x = Xml::new();
    x.write(facts, settings, &ivorn, issued)
        .expect("writing XML into a Vec cannot fail");
    Ok(Document {
        file_name: format!("{}-voevent.xml", file_stem(&facts.name)),
        ivorn,
        xml: x.w.into_inner(),
    })
}

/// A VOEvent time: ISO 8601 in UTC to the millisecond, with no zone
/// designator (the coordinate system says UTC), as brokers write them.
pub fn iso_time(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]"
        ))
        .expect("every field of the format is in a date-time")
}

/// Degrees to the micro-degree (0.0036″), rounded as integers so that an
/// RA just below 360 becomes 0, never "360.000000", and a Dec just below
/// zero is not written "-0.000000".
fn micro_degrees(deg: f64, wrap: bool) -> String {
    let mut micro = (deg * 1e6).round() as i64;
    if wrap {
        micro = micro.rem_euclid(360_000_000);
    }
    let sign = if micro < 0 { "-" } else { "" };
    let m = micro.unsigned_abs();
    format!("{sign}{}.{:06}", m / 1_000_000, m % 1_000_000)
}

/// A finite number as the shortest text that reads back as itself (a
/// valid `xs:float` lexical form); an `f32` as itself, not as the `f64`
/// nearest to it.
fn number(v: impl fmt::Debug) -> String {
    format!("{v:?}")
}

fn int(v: impl fmt::Display) -> String {
    v.to_string()
}

/// One `What/Param`.
struct Param<'a> {
    name: &'a str,
    value: String,
    ucd: Option<&'a str>,
    unit: Option<&'a str>,
    data_type: Option<&'a str>,
    description: Option<String>,
}

impl<'a> Param<'a> {
    fn new(name: &'a str, value: impl Into<String>) -> Self {
        Self {
            name,
            value: value.into(),
            ucd: None,
            unit: None,
            data_type: None,
            description: None,
        }
    }
    fn ucd(mut self, ucd: &'a str) -> Self {
        self.ucd = Some(ucd);
        self
    }
    fn unit(mut self, unit: &'a str) -> Self {
        self.unit = Some(unit).filter(|u| !u.is_empty());
        self
    }
    fn float(mut self) -> Self {
        self.data_type = Some("float");
        self
    }
    fn int(mut self) -> Self {
        self.data_type = Some("int");
        self
    }
    fn describe(mut self, d: impl Into<String>) -> Self {
        self.description = Some(d.into());
        self
    }
}

/// quick-xml's writer with the few shapes a VOEvent needs. Every text and
/// attribute value is cleaned of what XML cannot hold, then escaped.
struct Xml {
    w: Writer<Vec<u8>>,
}

fn start<'a>(name: &'a str, attrs: &[(&str, &str)]) -> BytesStart<'a> {
    let mut e = BytesStart::new(name);
    for (k, v) in attrs {
        e.push_attribute((*k, xml_clean(v).as_ref()));
    }
    e
}

impl Xml {
    fn new() -> Self {
        Self {
            w: Writer::new_with_indent(Vec::new(), b' ', 2),
        }
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        self.w.write_event(Event::Start(start(name, attrs)))
    }

    fn close(&mut self, name: &str) -> io::Result<()> {
        self.w.write_event(Event::End(BytesEnd::new(name)))
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> io::Result<()> {
        self.w.write_event(Event::Empty(start(name, attrs)))
    }

    fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) -> io::Result<()> {
        self.open(name, attrs)?;
        // Only `<`, `>` and `&` need escaping in text; quotes stay readable.
        let escaped = quick_xml::escape::partial_escape(xml_clean(text));
        self.w
            .write_event(Event::Text(BytesText::from_escaped(escaped)))?;
        self.close(name)
    }

    fn description(&mut self, text: &str) -> io::Result<()> {
        self.leaf("Description", &[], text)
    }

    fn param(&mut self, p: Param<'_>) -> io::Result<()> {
        let mut attrs = vec![("name", p.name), ("value", p.value.as_str())];
        attrs.extend(p.ucd.map(|u| ("ucd", u)));
        attrs.extend(p.unit.map(|u| ("unit", u)));
        attrs.extend(p.data_type.map(|t| ("dataType", t)));
        match &p.description {
            None => self.empty("Param", &attrs),
            Some(d) => {
                self.open("Param", &attrs)?;
                self.description(d)?;
                self.close("Param")
            }
        }
    }

    fn write(
        &mut self,
        f: &Facts,
        s: &Settings,
        ivorn: &str,
        issued: OffsetDateTime,
    ) -> io::Result<()> {
        self.w
            .write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
        self.open(
            "voe:VOEvent",
            &[
                ("xmlns:voe", NAMESPACE),
                ("xmlns:xsi", "http://www.w3.org/2001/XMLSchema-instance"),
                ("xsi:schemaLocation", SCHEMA_LOCATION),
                ("version", "2.0"),
                ("role", s.role.as_str()),
                ("ivorn", ivorn),
            ],
        )?;
        self.who(f, s, issued)?;
        self.what(f)?;
        self.where_when(f)?;
        self.how(f)?;
        self.why(f)?;
        self.description(&format!(
            "{}: a transient candidate of {} ({}) that the team's reviewers settled as real.",
            f.name, f.project_name, f.observation
        ))?;
        self.close("voe:VOEvent")?;
        self.w.get_mut().push(b'\n');
        Ok(())
    }

    fn who(&mut self, f: &Facts, s: &Settings, issued: OffsetDateTime) -> io::Result<()> {
        self.open("Who", &[])?;
        self.leaf("AuthorIVORN", &[], s.authority.as_str())?;
        self.leaf("Date", &[], &iso_time(issued))?;
        self.open("Author", &[])?;
        self.leaf("title", &[], &f.project_name)?;
        let a = &s.author;
        for (element, value) in [
            ("shortName", &a.short_name),
            ("contactName", &a.contact_name),
            ("contactEmail", &a.contact_email),
        ] {
            if let Some(v) = value {
                self.leaf(element, &[], v)?;
            }
        }
        self.close("Author")?;
        self.close("Who")
    }

    fn what(&mut self, f: &Facts) -> io::Result<()> {
        self.open("What", &[])?;
        self.param(Param::new("candidate", f.name.as_str()).ucd("meta.id;meta.main"))?;
        self.param(
            Param::new("vetter_id", int(f.id))
                .ucd("meta.record")
                .int()
                .describe("the candidate's number in vetter"),
        )?;
        self.param(
            Param::new("project", f.project_slug.as_str())
                .ucd("meta.dataset")
                .describe(f.project_name.as_str()),
        )?;
        self.param(Param::new("observation", f.observation.as_str()).ucd("meta.id;obs"))?;
        if let Some(b) = &f.beam {
            self.param(Param::new("beam", b.as_str()).ucd("meta.id;instr.beam"))?;
        }
        if let Some(flux) = f.flux.as_ref().filter(|x| x.value.is_finite()) {
            let whence = match &flux.source {
                FluxSource::Metric(label) => format!("the project's metric {label:?}"),
                FluxSource::LightCurve(at) => format!(
                    "the brightest point of the light curve, at {} UTC",
                    iso_time(*at)
                ),
            };
            self.param(
                Param::new("peak_flux", number(flux.value))
                    .ucd("phot.flux.density;stat.max")
                    .unit(&flux.unit)
                    .float()
                    .describe(format!("peak flux density: {whence}")),
            )?;
        }
        self.classification(f)?;
        if let Some(link) = &f.link {
            self.empty("Reference", &[("uri", link), ("type", "url")])?;
        }
        self.close("What")
    }

    fn classification(&mut self, f: &Facts) -> io::Result<()> {
        let t = &f.team;
        self.open(
            "Group",
            &[("name", "classification"), ("type", "vetter_consensus")],
        )?;
        self.param(
            Param::new("consensus", t.consensus().as_str())
                .ucd("meta.code.class")
                .describe(format!(
                    "settled once real or not real has {k} verdicts and leads the other by {k}",
                    k = t.k
                )),
        )?;
        for (name, n, what) in [
            ("n_real", t.n_real, "reviewers who rated it real"),
            (
                "n_not_real",
                t.n_not_real,
                "reviewers who rated it not real",
            ),
            ("n_unsure", t.n_unsure, "reviewers unsure"),
        ] {
            self.param(
                Param::new(name, int(n))
                    .ucd("meta.number")
                    .int()
                    .describe(what),
            )?;
        }
        self.param(Param::new("consensus_k", int(t.k)).int())?;
        self.close("Group")?;
        if !t.tags.is_empty() {
            self.open("Group", &[("name", "tags"), ("type", "vetter_tags")])?;
            self.description(
                "the reviewers' tags, each with the number of current ratings carrying it",
            )?;
            for (tag, n) in &t.tags {
                self.param(Param::new(tag, int(n)).ucd("meta.code.class").int())?;
            }
            self.close("Group")?;
        }
        if let Some(a) = &f.association {
            self.open(
                "Group",
                &[("name", "association"), ("type", "vetter_association")],
            )?;
            self.param(Param::new("source", a.source.as_str()).ucd("meta.id"))?;
            self.param(Param::new("catalogue", a.catalogue.as_str()).ucd("meta.ref"))?;
            if a.separation_arcsec.is_finite() {
                self.param(
                    Param::new("separation", number(a.separation_arcsec))
                        .ucd("pos.angDistance")
                        .unit("arcsec")
                        .float(),
                )?;
            }
            self.close("Group")?;
        }
        if let Some(m) = &f.model {
            self.open("Group", &[("name", "model"), ("type", "vetter_model")])?;
            self.param(
                Param::new("p_real", number(m.p_real))
                    .ucd("stat.probability")
                    .float()
                    .describe(
                        "the project's real/bogus model's calibrated probability that it is real",
                    ),
            )?;
            self.param(Param::new("model_version", int(m.version)).int())?;
            self.close("Group")?;
        }
        Ok(())
    }

    fn where_when(&mut self, f: &Facts) -> io::Result<()> {
        self.open("WhereWhen", &[])?;
        self.open("ObsDataLocation", &[])?;
        self.empty("ObservatoryLocation", &[("id", OBSERVATORY)])?;
        self.open("ObservationLocation", &[])?;
        self.empty("AstroCoordSystem", &[("id", COORD_SYSTEM)])?;
        self.open("AstroCoords", &[("coord_system_id", COORD_SYSTEM)])?;
        if let Some(t) = f.time {
            self.open("Time", &[("unit", "s")])?;
            self.open("TimeInstant", &[])?;
            self.leaf("ISOTime", &[], &iso_time(t))?;
            self.close("TimeInstant")?;
            self.close("Time")?;
        }
        self.open("Position2D", &[("unit", "deg")])?;
        self.leaf("Name1", &[], "RA")?;
        self.leaf("Name2", &[], "Dec")?;
        self.open("Value2", &[])?;
        self.leaf("C1", &[], &micro_degrees(f.pos.ra.degrees(), true))?;
        self.leaf("C2", &[], &micro_degrees(f.pos.dec.degrees(), false))?;
        self.close("Value2")?;
        self.leaf("Error2Radius", &[], &number(f.error_radius_arcsec / 3600.0))?;
        self.close("Position2D")?;
        self.close("AstroCoords")?;
        self.close("ObservationLocation")?;
        self.close("ObsDataLocation")?;
        self.description(&format!(
                "The time is the start of observation {}. The error circle is the project's \
                 grouping radius ({}\u{2033}), within which it takes two detections for one source.",
                f.observation,
                number(f.error_radius_arcsec)
            ),
        )?;
        self.close("WhereWhen")
    }

    fn how(&mut self, f: &Facts) -> io::Result<()> {
        self.open("How", &[])?;
        let beam = f
            .beam
            .as_ref()
            .map_or_else(String::new, |b| format!(", beam {b}"));
        self.description(&format!(
            "Found by the {} pipeline in observation {}{beam}, then rated by the project's \
                 reviewers in vetter.",
            f.project_name, f.observation
        ))?;
        self.close("How")
    }

    fn why(&mut self, f: &Facts) -> io::Result<()> {
        let t = &f.team;
        self.open("Why", &[])?;
        let p = f.model.map(|m| number(m.p_real));
        let mut attrs = Vec::new();
        if let Some(p) = &p {
            attrs.push(("probability", p.as_str()));
        }
        self.open("Inference", &attrs)?;
        self.leaf("Name", &[], &f.name)?;
        self.leaf("Concept", &[], "transient")?;
        for (tag, _) in &t.tags {
            self.leaf("Concept", &[], tag)?;
        }
        let model = f.model.map_or_else(String::new, |m| {
            format!(
                " The project's model (version {}) gives P(real) = {:.2}.",
                m.version, m.p_real
            )
        });
        self.description(&format!(
            "Settled as real by the team's reviewers: {} real, {} not real, {} unsure.{model}",
            t.n_real, t.n_not_real, t.n_unsure
        ))?;
        self.close("Inference")?;
        if let Some(a) = &f.association {
            self.open("Inference", &[("relation", "associated")])?;
            self.leaf("Name", &[], &a.source)?;
            self.description(&format!(
                "Associated by the team with {} of {}, {}\u{2033} away.",
                a.source,
                a.catalogue,
                number(a.separation_arcsec)
            ))?;
            self.close("Inference")?;
        }
        self.close("Why")
    }
}

#[cfg(test)]
#[path = "../../tests/common/voevent_schema.rs"]
mod schema;

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn settings() -> Settings {
        Settings {
            authority: IvornBase::parse("ivo://example.org/vetter").unwrap(),
            role: Role::Observation,
            author: Author {
                short_name: Some("VAST".into()),
                contact_name: Some("Ada Lovelace".into()),
                contact_email: Some("ada@example.org".into()),
            },
        }
    }

    fn facts() -> Facts {
        Facts {
            id: CandidateId(42),
            name: "VAST J123456.7-451234".into(),
            project_slug: "vast".into(),
            project_name: "VAST".into(),
            observation: "SB50230".into(),
            beam: Some("beam00".into()),
            pos: SkyPos::new(188.7, -45.2).unwrap(),
            error_radius_arcsec: 10.0,
            time: Some(datetime!(2024-05-01 12:00:00.25 UTC)),
            flux: Some(Flux {
                value: 12.5,
                unit: "mJy/beam".into(),
                source: FluxSource::Metric("Peak flux".into()),
            }),
            team: Team {
                n_real: 3,
                n_not_real: 0,
                n_unsure: 1,
                k: 2,
                tags: vec![("Flare star".into(), 2), ("IDV".into(), 1)],
            },
            association: Some(Association {
                catalogue: "racs".into(),
                source: "RACS J123456-451234".into(),
                separation_arcsec: 1.25,
            }),
            model: Some(ModelScore {
                p_real: 0.93,
                version: 4,
            }),
            link: Some("https://vetter.example.org/candidates/42".into()),
        }
    }

    fn issued() -> OffsetDateTime {
        datetime!(2024-05-02 08:30:00 UTC)
    }

    fn at(xml: &str, expr: &str) -> String {
        schema::xpath(xml.as_bytes(), expr)
    }

    fn made(f: &Facts) -> String {
        let d = document(f, &settings(), issued()).unwrap();
        schema::assert_valid(&d.xml);
        String::from_utf8(d.xml).unwrap()
    }

    #[test]
    fn a_settled_candidate_makes_a_valid_document_with_its_position_time_and_verdicts() {
        let xml = made(&facts());
        assert!(xml.contains(r#"ivorn="ivo://example.org/vetter#vast/42""#));
        assert!(xml.contains(r#"role="observation""#));
        assert_eq!(at(&xml, "//C1"), "188.700000");
        assert_eq!(at(&xml, "//C2"), "-45.200000");
        assert_eq!(at(&xml, "//ISOTime"), "2024-05-01T12:00:00.250");
        assert_eq!(at(&xml, "//Who/Date"), "2024-05-02T08:30:00.000");
        assert_eq!(
            at(&xml, "//Error2Radius").parse::<f64>().unwrap(),
            10.0 / 3600.0
        );
        assert!(xml.contains(r#"coord_system_id="UTC-ICRS-TOPO""#));
        assert!(xml.contains(
            r#"<Param name="peak_flux" value="12.5" ucd="phot.flux.density;stat.max" unit="mJy/beam" dataType="float">"#
        ));
        assert!(xml.contains(r#"<Param name="n_real" value="3""#));
        assert!(xml.contains(r#"<Param name="Flare star" value="2""#));
        assert!(xml.contains(r#"<Inference probability="0.93">"#));
        assert!(xml.contains("<Concept>Flare star</Concept>"));
        assert!(xml.contains(r#"<Inference relation="associated">"#));
        assert!(xml.contains("<contactEmail>ada@example.org</contactEmail>"));
        assert!(!xml.contains("Citations"));
        let d = document(&facts(), &settings(), issued()).unwrap();
        assert_eq!(d.file_name, "VAST_J123456.7-451234-voevent.xml");
        assert_eq!(d.ivorn, "ivo://example.org/vetter#vast/42");
    }

    #[test]
    fn odd_characters_are_escaped_and_the_document_stays_valid() {
        let mut f = facts();
        f.name = r#"J1 <b>&amp; "x" 'y'"#.into();
        f.project_name = "A & B <survey>".into();
        f.observation = "SB1&2".into();
        f.team.tags = vec![(r#"<script>"&'"#.into(), 1), ("bell\u{7}".into(), 1)];
        f.association.as_mut().unwrap().source = "Q\"uote>".into();
        f.flux.as_mut().unwrap().unit = "Jy<'\">".into();
        let mut s = settings();
        s.author.contact_name = Some("O'Brien & <Sons>\u{0}".into());
        let d = document(&f, &s, issued()).unwrap();
        schema::assert_valid(&d.xml);
        let xml = String::from_utf8(d.xml).unwrap();
        assert!(!xml.contains("<b>") && !xml.contains("<script>") && !xml.contains("<Sons>"));
        assert!(xml.contains("J1 &lt;b&gt;&amp;amp; &quot;x&quot; &apos;y&apos;"));
        assert!(xml.contains("O'Brien &amp; &lt;Sons&gt;\u{FFFD}"));
        assert!(xml.contains("bell\u{FFFD}"));
        // Read back by an XML parser, every value is what was given.
        assert_eq!(at(&xml, "//Why/Inference/Name"), f.name);
        assert_eq!(at(&xml, "//What/Param[@name='candidate']/@value"), f.name);
        assert_eq!(at(&xml, "//Who/Author/title"), "A & B <survey>");
        assert_eq!(at(&xml, "//Param[@name='peak_flux']/@unit"), "Jy<'\">");
        assert!(!xml.contains('\u{7}') && !xml.contains('\u{0}'));
        assert_eq!(d.file_name, "J1__b__amp___x___y_-voevent.xml");
    }

    #[test]
    fn positions_keep_their_sign_and_an_ra_near_360_wraps() {
        let mut f = facts();
        f.pos = SkyPos::new(359.9999999, -0.0000001).unwrap();
        let xml = made(&f);
        assert_eq!(at(&xml, "//C1"), "0.000000");
        assert_eq!(at(&xml, "//C2"), "0.000000");
        f.pos = SkyPos::new(359.999999, -89.9999999).unwrap();
        let xml = made(&f);
        assert_eq!(at(&xml, "//C1"), "359.999999");
        assert_eq!(at(&xml, "//C2"), "-90.000000");
        f.pos = SkyPos::new(0.0, -0.5).unwrap();
        let xml = made(&f);
        assert_eq!(at(&xml, "//C1"), "0.000000");
        assert_eq!(at(&xml, "//C2"), "-0.500000");
        f.pos = SkyPos::new(12.3456784, 90.0).unwrap();
        let xml = made(&f);
        assert_eq!(at(&xml, "//C1"), "12.345678");
        assert_eq!(at(&xml, "//C2"), "90.000000");
    }

    #[test]
    fn what_is_not_known_is_left_out() {
        let mut f = facts();
        f.flux = None;
        f.model = None;
        f.association = None;
        f.beam = None;
        f.time = None;
        f.link = None;
        f.team.tags.clear();
        let mut s = settings();
        s.author = Author::default();
        let d = document(&f, &s, issued()).unwrap();
        schema::assert_valid(&d.xml);
        let xml = String::from_utf8(d.xml).unwrap();
        for absent in [
            "peak_flux",
            "probability=",
            "p_real",
            "association",
            "\"beam\"",
            "<Time",
            "Reference",
            "vetter_tags",
            "contactName",
        ] {
            assert!(!xml.contains(absent), "{absent} in\n{xml}");
        }
        assert!(xml.contains("<Inference>"));
        assert!(xml.contains("<title>VAST</title>"));
    }

    #[test]
    fn a_flux_that_is_not_finite_is_left_out_and_one_from_the_light_curve_says_when() {
        let mut f = facts();
        f.flux.as_mut().unwrap().value = f64::NAN;
        assert!(!made(&f).contains("peak_flux"));
        f.flux = Some(Flux {
            value: 9.5,
            unit: String::new(),
            source: FluxSource::LightCurve(datetime!(2024-05-01 12:10 UTC)),
        });
        let xml = made(&f);
        assert!(xml.contains(r#"<Param name="peak_flux" value="9.5" ucd="phot.flux.density;stat.max" dataType="float">"#));
        assert!(xml.contains("light curve, at 2024-05-01T12:10:00.000 UTC"));
    }

    #[test]
    fn a_test_role_is_written_as_such() {
        let mut s = settings();
        s.role = Role::parse("test").unwrap();
        let d = document(&facts(), &s, issued()).unwrap();
        schema::assert_valid(&d.xml);
        assert!(String::from_utf8(d.xml).unwrap().contains(r#"role="test""#));
        assert!(Role::parse("utility").is_err());
    }

    #[test]
    fn only_a_candidate_settled_as_real_gets_a_document() {
        for (r, n, want) in [
            (1, 0, Consensus::Open),
            (2, 1, Consensus::Disputed),
            (0, 2, Consensus::SettledNotReal),
        ] {
            let mut f = facts();
            f.team.n_real = r;
            f.team.n_not_real = n;
            let err = document(&f, &settings(), issued()).unwrap_err();
            assert_eq!(err, NotSettledReal(want));
            assert!(err.to_string().contains(want.label()));
        }
    }

    #[test]
    fn the_schema_check_is_not_vacuous() {
        let xml = made(&facts());
        for broken in [
            xml.replace(r#"role="observation""#, r#"role="announcement""#),
            xml.replace("UTC-ICRS-TOPO", "UTC-ICRS-NOWHERE"),
            xml.replace("<C2>-45.200000</C2>", "<C2>south</C2>"),
            xml.replace(r#" version="2.0""#, ""),
        ] {
            assert!(schema::validate(broken.as_bytes()).is_err(), "{broken}");
        }
    }

    #[test]
    fn authorities_are_checked() {
        let base = IvornBase::parse("ivo://example.org/vetter").unwrap();
        assert_eq!(
            base.candidate("vast-demo", CandidateId(7)),
            "ivo://example.org/vetter#vast-demo/7"
        );
        assert!(IvornBase::parse("ivo://au.csiro/askap/vast").is_ok());
        for bad in [
            "http://example.org/vetter",
            "ivo://example.org",
            "ivo://example.org/",
            "ivo://ex/vetter",
            "ivo://example.org/vetter#x",
            "ivo://example.org/vet ter",
            "ivo://example.org//vetter",
            "ivo://example.org/vetter?x=1",
        ] {
            assert!(IvornBase::parse(bad).is_err(), "{bad}");
        }
    }
}
