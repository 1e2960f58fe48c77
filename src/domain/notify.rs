//! Notifications as the admin forms and the database name them: the kinds
//! of target and the events a target may choose.

use std::fmt;
use std::str::FromStr;

use crate::domain::text::shown;

/// Where a target's messages go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A JSON POST, signed (`X-Vetter-Signature`).
    Webhook,
    /// A Slack-compatible incoming webhook: `{"text": "..."}`.
    Slack,
    /// E-mail to a list of addresses, through the SMTP relay.
    Email,
}

impl TargetKind {
    pub const ALL: [TargetKind; 3] = [TargetKind::Webhook, TargetKind::Slack, TargetKind::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::Webhook => "webhook",
            TargetKind::Slack => "slack",
            TargetKind::Email => "email",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            TargetKind::Webhook => "Webhook (JSON, signed)",
            TargetKind::Slack => "Slack incoming webhook",
            TargetKind::Email => "E-mail",
        }
    }
}

impl FromStr for TargetKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| format!("a target is a webhook, slack or email, not {}", shown(s)))
    }
}

impl fmt::Display for TargetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a project's target can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A pipeline said an observation's upload is finished.
    UploadFinished,
    /// A candidate's ratings settled it as real, the first time.
    ConsensusReal,
}

impl Event {
    pub const ALL: [Event; 2] = [Event::UploadFinished, Event::ConsensusReal];

    pub fn as_str(self) -> &'static str {
        match self {
            Event::UploadFinished => "upload_finished",
            Event::ConsensusReal => "consensus_real",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Event::UploadFinished => "An observation's upload finished",
            Event::ConsensusReal => "A candidate's consensus became real",
        }
    }
}

impl FromStr for Event {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("{} is not an event a target can choose", shown(s)))
    }
}
