//! `/admin/status`: what the site holds and how much room is left.
//!
//! Media sizes come from the sizes stored with each file row, never from
//! walking the media folder. Free space comes from `df -Pk` on the media
//! root: the standard library has no `statvfs`, and the crate takes no new
//! dependency for it; POSIX fixes `df -P`'s output format.

use askama::Template;
use askama_web::WebTemplate;
use poem::handler;
use poem::web::Data;

use crate::db::status::{self, Counts, ProjectMedia};
use crate::web::pages::admin::{size_text, Admin};
use crate::web::plumbing::error::WebResult;
use crate::web::plumbing::layout::Layout;
use crate::web::state::AppState;

/// The file system that holds the media folder, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Disk {
    pub total: u64,
    pub used: u64,
    pub available: u64,
}

impl Disk {
    pub fn available_text(&self) -> String {
        size_text(self.available as i64)
    }
    pub fn total_text(&self) -> String {
        size_text(self.total as i64)
    }
    pub fn percent_free(&self) -> u64 {
        (self.available * 100).checked_div(self.total).unwrap_or(0)
    }
}

/// Reads `df -Pk` output: a header, then `filesystem 1024-blocks used
/// available capacity% mountpoint`. The file system name may hold spaces,
/// so the numbers are found as three numbers followed by a percentage.
pub fn parse_df(out: &str) -> Option<Disk> {
    let line = out.lines().nth(1)?;
    let words: Vec<&str> = line.split_whitespace().collect();
    words.windows(4).find_map(|w| {
        let n = |s: &str| s.parse::<u64>().ok();
        if !w[3].ends_with('%') {
            return None;
        }
        Some(Disk {
            total: n(w[0])?.checked_mul(1024)?,
            used: n(w[1])?.checked_mul(1024)?,
            available: n(w[2])?.checked_mul(1024)?,
        })
    })
}

async fn disk(root: std::path::PathBuf) -> Result<Disk, String> {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("df")
            .arg("-Pk")
            .arg(&root)
            .output()
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("df could not run: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "df failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_df(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| "df gave output this page cannot read".to_string())
}

#[derive(Template, WebTemplate)]
#[template(path = "admin/status.html")]
pub struct StatusPage {
    layout: Layout,
    counts: Counts,
    media: Vec<ProjectMedia>,
    disk: Result<Disk, String>,
    media_root: String,
    /// The folder or bucket objects are kept in, and whether it answers.
    store: String,
    store_check: Result<(), String>,
}

impl StatusPage {
    pub fn size(&self, bytes: &i64) -> String {
        size_text(*bytes)
    }
    pub fn version(&self) -> &'static str {
        crate::VERSION
    }
    pub fn commit(&self) -> &'static str {
        crate::BUILD_COMMIT
    }
}

#[handler]
pub async fn page(layout: Layout, state: Data<&AppState>, _admin: Admin) -> WebResult<StatusPage> {
    let mut conn = state.pool.acquire().await?;
    let counts = status::counts(&mut conn).await?;
    let media = status::media_per_project(&mut conn).await?;
    drop(conn);
    Ok(StatusPage {
        layout,
        counts,
        media,
        disk: disk(state.config.media_root.clone()).await,
        media_root: state.config.media_root.display().to_string(),
        store: state.media.describe(),
        store_check: state.media.probe().await.map_err(|e| e.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn df_output_is_read_even_with_spaces_in_the_file_system_name() {
        let plain = "Filesystem     1024-blocks      Used Available Capacity Mounted on\n\
                     /dev/sda1        102400000  40000000  62400000      40% /srv/media\n";
        assert_eq!(
            parse_df(plain),
            Some(Disk {
                total: 102_400_000 * 1024,
                used: 40_000_000 * 1024,
                available: 62_400_000 * 1024,
            })
        );
        let spaced = "Filesystem 1024-blocks Used Available Capacity Mounted on\n\
                      map auto_home 10 4 6 40% /home with space\n";
        assert_eq!(parse_df(spaced).unwrap().available, 6 * 1024);
        assert_eq!(parse_df(""), None);
        assert_eq!(parse_df("header only\n"), None);
        assert_eq!(parse_df("h\nnot df output at all\n"), None);
    }

    #[test]
    fn percent_free_survives_an_empty_file_system() {
        let d = Disk {
            total: 0,
            used: 0,
            available: 0,
        };
        assert_eq!(d.percent_free(), 0);
    }
}
