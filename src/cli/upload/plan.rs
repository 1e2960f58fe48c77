//! Which candidates go in which request: grouped by observation (the batch
//! endpoint takes one observation), in file order, at most `batch_size` per
//! request, and split further when the files of a batch get large.

use std::collections::HashMap;

use serde_json::{Map, Value};

use super::api::FilePart;
use super::input::{with_parts, Candidate, LocalFile};

/// Indices into the candidate list, all of one observation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub observation: String,
    pub items: Vec<usize>,
}

pub use crate::domain::upload::MAX_BATCH;

/// And at most this many files (`VETTER_MAX_UPLOAD_PARTS`, by default).
pub const MAX_FILES: usize = 1000;

/// Observations in order of first appearance; within each, candidates in
/// file order. A batch closes at `batch_size` candidates, or before a
/// candidate whose files would take it past `max_bytes` or [`MAX_FILES`] (a
/// candidate larger than that travels alone).
pub fn batches(cands: &[Candidate], batch_size: usize, max_bytes: u64) -> Vec<Batch> {
    let batch_size = batch_size.clamp(1, MAX_BATCH);
    let mut order: Vec<&str> = Vec::new();
    let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, c) in cands.iter().enumerate() {
        let g = groups.entry(&c.observation).or_insert_with(|| {
            order.push(&c.observation);
            Vec::new()
        });
        g.push(i);
    }
    let mut out = Vec::new();
    for obs in order {
        let mut current = Vec::new();
        let (mut bytes, mut files) = (0u64, 0usize);
        for &i in &groups[obs] {
            let size = cands[i].file_bytes();
            let n = cands[i].files.len();
            if !current.is_empty()
                && (current.len() >= batch_size
                    || bytes.saturating_add(size) > max_bytes
                    || files + n > MAX_FILES)
            {
                out.push(Batch {
                    observation: obs.to_string(),
                    items: std::mem::take(&mut current),
                });
                (bytes, files) = (0, 0);
            }
            current.push(i);
            bytes = bytes.saturating_add(size);
            files += n;
        }
        if !current.is_empty() {
            out.push(Batch {
                observation: obs.to_string(),
                items: current,
            });
        }
    }
    out
}

/// The body of `POST .../candidates` for `items`, the file parts, and
/// which candidate (by position in `items`) owns each part.
pub fn request<'a>(
    cands: &'a [Candidate],
    items: &[usize],
) -> (Value, Vec<FilePart<'a>>, HashMap<String, usize>) {
    let mut list = Vec::with_capacity(items.len());
    let mut parts = Vec::new();
    let mut owner = HashMap::new();
    for (pos, &i) in items.iter().enumerate() {
        list.push(cands[i].json(|f| {
            let part = format!("f{}", parts.len() + 1);
            owner.insert(part.clone(), pos);
            parts.push(FilePart {
                part: part.clone(),
                file: f,
            });
            part
        }));
    }
    (serde_json::json!({ "candidates": list }), parts, owner)
}

/// The body and parts for an observation or beam: `files` maps role to
/// part name, like candidates.
pub fn with_files<'a>(
    body: &Map<String, Value>,
    files: &'a [LocalFile],
) -> (Value, Vec<FilePart<'a>>) {
    let mut parts = Vec::new();
    let body = with_parts(body.clone(), files, |f| {
        let part = format!("f{}", parts.len() + 1);
        parts.push(FilePart {
            part: part.clone(),
            file: f,
        });
        part
    });
    (body, parts)
}

/// `12.3 KB`
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut x = n as f64;
    let mut u = 0;
    while x >= 1000.0 && u < UNITS.len() - 1 {
        x /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{x:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use super::*;
    use crate::cli::upload::input::CandidateBody;

    fn cand(obs: &str, name: &str, file_sizes: &[u64]) -> Candidate {
        Candidate {
            row: 0,
            observation: obs.into(),
            body: CandidateBody {
                name: name.into(),
                beam: None,
                ra: 1.0,
                dec: 2.0,
                positions: BTreeMap::new(),
                metrics: BTreeMap::new(),
                attributes: Map::new(),
                light_curve: None,
                gold: None,
            },
            files: file_sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| LocalFile {
                    role: format!("r{i}"),
                    rel: format!("{name}_{i}.png"),
                    path: PathBuf::from(format!("/x/{name}_{i}.png")),
                    size,
                })
                .collect(),
        }
    }

    fn shape(b: &[Batch]) -> Vec<(&str, Vec<usize>)> {
        b.iter()
            .map(|b| (b.observation.as_str(), b.items.clone()))
            .collect()
    }

    #[test]
    fn candidates_are_grouped_by_observation_then_chunked() {
        let c = [
            cand("A", "1", &[]),
            cand("B", "2", &[]),
            cand("A", "3", &[]),
            cand("A", "4", &[]),
            cand("B", "5", &[]),
            cand("A", "6", &[]),
        ];
        assert_eq!(
            shape(&batches(&c, 2, u64::MAX)),
            [("A", vec![0, 2]), ("A", vec![3, 5]), ("B", vec![1, 4])]
        );
        assert_eq!(
            shape(&batches(&c, 50, u64::MAX)),
            [("A", vec![0, 2, 3, 5]), ("B", vec![1, 4])]
        );
        assert!(batches(&[], 50, u64::MAX).is_empty());
    }

    #[test]
    fn large_files_close_a_batch_early() {
        let c = [
            cand("A", "1", &[60]),
            cand("A", "2", &[30]),
            cand("A", "3", &[20]),
            cand("A", "4", &[500]),
            cand("A", "5", &[1]),
        ];
        assert_eq!(
            shape(&batches(&c, 50, 100)),
            [
                ("A", vec![0, 1]),
                ("A", vec![2]),
                ("A", vec![3]),
                ("A", vec![4])
            ]
        );
    }

    #[test]
    fn many_files_close_a_batch_early() {
        let six = [1u64; 6];
        let c: Vec<_> = (0..400).map(|i| cand("A", &i.to_string(), &six)).collect();
        let sizes: Vec<usize> = batches(&c, 1000, u64::MAX)
            .iter()
            .map(|b| b.items.len())
            .collect();
        // 166 candidates of six files each make 996 files; a 167th would pass 1000.
        assert_eq!(sizes, [166, 166, 68]);
    }

    #[test]
    fn each_file_gets_its_own_part_named_in_the_json() {
        let c = [
            cand("A", "J1", &[5, 6]),
            cand("A", "J2", &[]),
            cand("A", "J3", &[7]),
        ];
        let (body, parts, owner) = request(&c, &[0, 1, 2]);
        let list = body["candidates"].as_array().unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(
            list[0]["files"],
            serde_json::json!({"r0": "f1", "r1": "f2"})
        );
        assert!(list[1].get("files").is_none());
        assert_eq!(list[2]["files"], serde_json::json!({"r0": "f3"}));
        assert_eq!(
            parts.iter().map(|p| p.part.as_str()).collect::<Vec<_>>(),
            ["f1", "f2", "f3"]
        );
        assert_eq!(parts[2].file.rel, "J3_0.png");
        assert_eq!(owner["f1"], 0);
        assert_eq!(owner["f3"], 2);
        // A resend of a subset numbers the parts afresh.
        let (_, parts, owner) = request(&c, &[2]);
        assert_eq!(parts[0].part, "f1");
        assert_eq!(owner["f1"], 0);
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(67), "67 bytes");
        assert_eq!(human_bytes(12_345), "12.3 KB");
        assert_eq!(human_bytes(1_000_000_000), "1.0 GB");
    }
}
