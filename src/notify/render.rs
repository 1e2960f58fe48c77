//! What each event says: one text in two styles (plain, for e-mail and the
//! webhook's `text`; Slack's mrkdwn with its links), a subject line, and
//! the webhook's JSON with the facts and links to the site.

use serde_json::{json, Value};

use super::Links;

/// How links and emphasis are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `label (https://…)`
    Plain,
    /// `<https://…|label>`, with `&`, `<` and `>` escaped as Slack asks.
    Slack,
}

impl Style {
    fn text(self, s: &str) -> String {
        match self {
            Style::Plain => s.to_string(),
            Style::Slack => s
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;"),
        }
    }

    fn link(self, label: &str, url: &str) -> String {
        match self {
            Style::Plain => format!("{label} ({url})"),
            Style::Slack => format!("<{}|{}>", url, self.text(label).replace('|', "¦")),
        }
    }

    fn strong(self, s: &str) -> String {
        match self {
            Style::Plain => s.to_string(),
            Style::Slack => format!("*{}*", self.text(s)),
        }
    }
}

/// The event as the worker read it.
pub struct Event<'a> {
    pub kind: &'a str,
    pub delivery: i64,
    pub project_slug: Option<&'a str>,
    pub project_name: Option<&'a str>,
    pub target_name: Option<&'a str>,
    pub facts: &'a Value,
}

pub struct Rendered {
    pub subject: String,
    pub plain: String,
    pub slack: String,
    pub json: Value,
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn n(v: &Value, k: &str) -> i64 {
    v.get(k).and_then(Value::as_i64).unwrap_or(0)
}

/// `1234567` as `1,234,567`.
fn count(x: i64) -> String {
    let digits = x.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if x < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn plural(x: i64, one: &str, many: &str) -> String {
    format!("{} {}", count(x), if x == 1 { one } else { many })
}

pub fn render(e: &Event<'_>, links: &Links) -> Rendered {
    let project = e.project_name.unwrap_or("vetter");
    let (subject, text): (String, Box<dyn Fn(Style) -> String>) = match e.kind {
        "upload_finished" => upload_finished(e, links, project),
        "consensus_real" => consensus_real(e, links, project),
        "daily_summary" => daily_summary(e, links),
        _ => {
            let target = e.target_name.unwrap_or("").to_string();
            let project = project.to_string();
            (
                format!("{project}: a test message from vetter"),
                Box::new(move |st: Style| {
                    format!(
                        "{}: a test message for the target {} from vetter's admin page. It arrived, so the target works.",
                        st.strong(&project),
                        st.text(&format!("{target:?}"))
                    )
                }),
            )
        }
    };
    let plain = text(Style::Plain);
    let mut data = e.facts.clone();
    add_links(e.kind, &mut data, links);
    let json = json!({
        "event": e.kind,
        "delivery": e.delivery,
        "project": e.project_slug.map(|slug| json!({
            "slug": slug, "name": project, "url": links.project_table(slug),
        })),
        "text": plain,
        "data": data,
    });
    Rendered {
        subject,
        slack: text(Style::Slack),
        plain,
        json,
    }
}

type Text = (String, Box<dyn Fn(Style) -> String>);

fn upload_finished(e: &Event<'_>, links: &Links, project: &str) -> Text {
    let f = e.facts.clone();
    let obs = s(&f["observation"], "external_id").to_string();
    let slug = e.project_slug.unwrap_or("").to_string();
    let table = links.observation_table(&slug, &obs);
    let links = links.clone();
    let project = project.to_string();
    let subject = format!("{project}: upload of {obs} finished");
    (
        subject,
        Box::new(move |st: Style| {
            let mut t = format!(
                "{}: the upload of observation {} finished with {} ({} new or changed).",
                st.strong(&project),
                st.link(&obs, &table),
                plural(n(&f, "candidates"), "candidate", "candidates"),
                count(n(&f, "new")),
            );
            let matched = n(&f, "matched");
            if matched > 0 {
                let by: Vec<String> = f["matched_by_catalogue"]
                    .as_object()
                    .map(|o| {
                        o.iter()
                            .map(|(k, v)| {
                                format!("{} {}", st.text(k), count(v.as_i64().unwrap_or(0)))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                t.push_str(&format!(
                    " {} a known source nearby ({}).",
                    if matched == 1 {
                        "1 has".to_string()
                    } else {
                        format!("{} have", count(matched))
                    },
                    by.join(", ")
                ));
            } else {
                t.push_str(" None has a known source nearby.");
            }
            let top = f["top"].as_array().cloned().unwrap_or_default();
            if top.is_empty() {
                t.push_str(" No model scores yet.");
            } else {
                t.push_str("\nMost likely real:");
                for c in &top {
                    let url = links.candidate(c["id"].as_i64().unwrap_or(0));
                    t.push_str(&format!(
                        "\n• {} p(real) {:.2}",
                        st.link(s(c, "name"), &url),
                        c["p_real"].as_f64().unwrap_or(0.0)
                    ));
                }
                let unscored = n(&f, "unscored");
                if unscored > 0 {
                    t.push_str(&format!("\n({} not scored yet.)", count(unscored)));
                }
            }
            t
        }),
    )
}

fn consensus_real(e: &Event<'_>, links: &Links, project: &str) -> Text {
    let f = e.facts.clone();
    let c = f["candidate"].clone();
    let name = s(&c, "name").to_string();
    let url = links.candidate(c["id"].as_i64().unwrap_or(0));
    let project = project.to_string();
    (
        format!("{project}: {name} is real by consensus"),
        Box::new(move |st: Style| {
            let v = &f["votes"];
            format!(
                "{}: {} in {} is settled real by the team: {} real, {} not real, {} unsure (the project settles at {} ahead). RA {:.5}°, Dec {:.5}°.",
                st.strong(&project),
                st.link(&name, &url),
                st.text(s(&c, "observation")),
                count(n(v, "real")),
                count(n(v, "not_real")),
                count(n(v, "unsure")),
                n(&f, "consensus_k"),
                c["ra"].as_f64().unwrap_or(0.0),
                c["dec"].as_f64().unwrap_or(0.0),
            )
        }),
    )
}

fn daily_summary(e: &Event<'_>, links: &Links) -> Text {
    let f = e.facts.clone();
    let next = links.next();
    let day = s(&f, "day").to_string();
    (
        format!("vetter: your summary for {day}"),
        Box::new(move |st: Style| {
            let mut t = format!(
                "Hello {},\n\nIn the 24 hours before {day} {} UTC you rated:",
                st.text(s(&f, "username")),
                s(&f, "at")
            );
            let rated = f["rated"].as_array().cloned().unwrap_or_default();
            if rated.is_empty() {
                t.push_str("\n  nothing.");
            }
            for r in &rated {
                t.push_str(&format!(
                    "\n  {}: {} real, {} not real, {} unsure",
                    st.text(s(r, "project")),
                    count(n(r, "real")),
                    count(n(r, "not_real")),
                    count(n(r, "unsure")),
                ));
            }
            t.push_str("\n\nWaiting for you:");
            let waiting = f["waiting"].as_array().cloned().unwrap_or_default();
            if waiting.is_empty() {
                t.push_str("\n  nothing.");
            }
            for w in &waiting {
                t.push_str(&format!(
                    "\n  {}: {} not rated by you ({} not rated by anyone) of {}",
                    st.text(s(w, "project")),
                    count(n(w, "not_rated_by_you")),
                    count(n(w, "not_rated_by_anyone")),
                    plural(n(w, "candidates"), "candidate", "candidates"),
                ));
            }
            t.push_str(&format!(
                "\n\n{}\n\nYou get this because you asked for a daily summary on your account page; untick it there to stop.",
                st.link("Rate the next candidate", &next)
            ));
            t
        }),
    )
}

/// Links for the webhook's JSON, beside the ids.
fn add_links(kind: &str, data: &mut Value, links: &Links) {
    match kind {
        "upload_finished" => {
            if let Some(top) = data.get_mut("top").and_then(Value::as_array_mut) {
                for c in top {
                    let id = c["id"].as_i64().unwrap_or(0);
                    c["url"] = json!(links.candidate(id));
                }
            }
        }
        "consensus_real" => {
            let id = data["candidate"]["id"].as_i64().unwrap_or(0);
            if let Some(c) = data.get_mut("candidate").and_then(Value::as_object_mut) {
                c.insert("url".into(), json!(links.candidate(id)));
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candidate(id: crate::domain::CandidateId) -> String {
        format!("/candidates/{id}")
    }

    fn links() -> Links {
        Links::new(
            "https://vetter.example.org",
            candidate,
            "/next",
            "/candidates",
        )
    }

    #[test]
    fn slack_text_escapes_and_links() {
        let facts = json!({
            "candidate": {"id": 7, "name": "J1<2>&3", "ra": 1.0, "dec": -2.0, "observation": "SB1"},
            "votes": {"real": 3, "not_real": 0, "unsure": 1}, "consensus_k": 2,
        });
        let r = render(
            &Event {
                kind: "consensus_real",
                delivery: 1,
                project_slug: Some("vast"),
                project_name: Some("VAST & co"),
                target_name: None,
                facts: &facts,
            },
            &links(),
        );
        assert!(r.slack.contains("*VAST &amp; co*"), "{}", r.slack);
        assert!(
            r.slack
                .contains("<https://vetter.example.org/candidates/7|J1&lt;2&gt;&amp;3>"),
            "{}",
            r.slack
        );
        assert!(
            r.plain
                .contains("J1<2>&3 (https://vetter.example.org/candidates/7)"),
            "{}",
            r.plain
        );
        assert_eq!(
            r.json["data"]["candidate"]["url"],
            "https://vetter.example.org/candidates/7"
        );
        assert_eq!(r.json["project"]["slug"], "vast");
    }

    #[test]
    fn counts_have_separators() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
    }
}
