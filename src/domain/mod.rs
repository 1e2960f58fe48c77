//! Values parsed once at the edge: a handler that holds one of these holds a
//! valid one.

pub mod chart;
pub mod consensus;
pub mod decision;
pub mod email;
pub mod filter;
pub mod frames;
pub mod gold;
pub mod groups;
pub mod keys;
pub mod names;
pub mod notify;
pub mod paging;
mod password;
mod problem;
pub mod queue;
pub mod rating;
mod role;
pub mod sexagesimal;
pub mod sky;
pub mod text;
pub mod token;
pub mod upload;
mod username;
pub mod visibility;
pub mod voevent;

pub use password::NewPassword;
pub use problem::Problem;
pub use rating::Verdict;
pub use role::Role;
pub use sky::{Dec, Ra, SkyPos};
pub use username::Username;

/// A typed primary key, so a user id cannot be passed where a candidate id is
/// expected.
macro_rules! typed_id {
    ($name:ident) => {
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            Hash,
            PartialOrd,
            Ord,
            sqlx::Type,
            serde::Serialize,
            serde::Deserialize,
        )]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use typed_id;

typed_id!(UserId);
typed_id!(CandidateId);
typed_id!(ProjectId);
typed_id!(ObservationId);
typed_id!(BeamId);
typed_id!(TagId);
typed_id!(FileId);
typed_id!(TokenId);
typed_id!(CatalogueId);
typed_id!(ViewId);
typed_id!(BatchId);
typed_id!(TargetId);
typed_id!(DeliveryId);
