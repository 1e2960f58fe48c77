//! The blind rule: whose ratings a viewer may see.
//!
//! A viewer always sees their own ratings. They see others' ratings of a
//! candidate (verdicts, scores, tags, notes, history, who rated, and any
//! count by verdict or tag) only if they have a current rating of it, or its
//! project has open review, or they are an administrator and the project
//! exempts administrators (`admins_see_all`). A filter on others' ratings
//! (reviewer, verdict, tag, "reviewers disagree") matches only ratings the
//! viewer may see, so its results cannot reveal the hidden ones either.
//!
//! What is not hidden: how many current ratings a candidate has
//! (`rating_count`: the table's column, "fewest ratings first", "rated by
//! anyone/nobody", "rated by others, not by me"). It says that someone
//! looked, never what they said, and the queue needs it to spread the work.
//!
//! [`RatingVisibility`] is built once per request from the user and every
//! project's two settings; `db::visibility` turns it into SQL, and
//! [`RatingVisibility::sees_others`] is the same rule for one candidate.

use crate::domain::{ProjectId, Role, UserId};

/// A project's settings that bear on the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ReviewSettings {
    pub project_id: ProjectId,
    /// Everyone sees every rating.
    pub open_review: bool,
    /// Administrators see every rating.
    pub admins_see_all: bool,
}

/// What one viewer may see of others' ratings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RatingVisibility {
    viewer: UserId,
    /// Projects whose ratings this viewer sees whether or not they rated.
    open_projects: Vec<ProjectId>,
    /// Every project is open to this viewer (so no query needs a condition).
    everywhere: bool,
}

impl RatingVisibility {
    pub fn new(viewer: UserId, role: Role, projects: &[ReviewSettings]) -> Self {
        let open = |p: &ReviewSettings| p.open_review || (role == Role::Admin && p.admins_see_all);
        Self {
            viewer,
            open_projects: projects
                .iter()
                .filter(|p| open(p))
                .map(|p| p.project_id)
                .collect(),
            // Never "everywhere" on an empty list: a project made after this
            // was built must not start out open.
            everywhere: !projects.is_empty() && projects.iter().all(open),
        }
    }

    /// [`Self::new`] from the settings read column by column (one array
    /// per field, in the same project order), as single statements that
    /// read them beside other things return them.
    pub fn from_columns(
        viewer: UserId,
        role: Role,
        project_ids: &[ProjectId],
        open_review: &[bool],
        admins_see_all: &[bool],
    ) -> Self {
        let settings: Vec<ReviewSettings> = project_ids
            .iter()
            .zip(open_review)
            .zip(admins_see_all)
            .map(
                |((&project_id, &open_review), &admins_see_all)| ReviewSettings {
                    project_id,
                    open_review,
                    admins_see_all,
                },
            )
            .collect();
        Self::new(viewer, role, &settings)
    }

    pub fn viewer(&self) -> UserId {
        self.viewer
    }

    /// Whether the viewer sees every rating everywhere.
    pub fn sees_everything(&self) -> bool {
        self.everywhere
    }

    /// Projects whose ratings the viewer sees in full.
    pub fn open_projects(&self) -> &[ProjectId] {
        &self.open_projects
    }

    /// Whether the viewer may see others' ratings of a candidate of
    /// `project`, given whether they have a current rating of it.
    pub fn sees_others(&self, project: ProjectId, rated_it: bool) -> bool {
        rated_it || self.sees_project(project)
    }

    /// Whether the viewer sees every rating of the project.
    pub fn sees_project(&self, project: ProjectId) -> bool {
        self.everywhere || self.open_projects.contains(&project)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(project_id: i64, open_review: bool, admins_see_all: bool) -> ReviewSettings {
        ReviewSettings {
            project_id: ProjectId(project_id),
            open_review,
            admins_see_all,
        }
    }

    #[test]
    fn a_blind_project_shows_others_ratings_only_once_rated() {
        let all = [settings(1, false, false)];
        for role in [Role::Reviewer, Role::Admin] {
            let v = RatingVisibility::new(UserId(7), role, &all);
            assert!(!v.sees_everything());
            assert!(!v.sees_others(ProjectId(1), false), "{role:?}");
            assert!(v.sees_others(ProjectId(1), true), "{role:?}");
        }
    }

    #[test]
    fn open_review_shows_everything_to_everyone() {
        let all = [settings(1, true, false), settings(2, false, false)];
        let v = RatingVisibility::new(UserId(7), Role::Reviewer, &all);
        assert!(v.sees_others(ProjectId(1), false));
        assert!(!v.sees_others(ProjectId(2), false));
        assert_eq!(v.open_projects(), &[ProjectId(1)]);
        assert!(!v.sees_everything());
    }

    #[test]
    fn admins_see_all_exempts_administrators_only() {
        let all = [settings(1, false, true)];
        assert!(!RatingVisibility::new(UserId(7), Role::Reviewer, &all)
            .sees_others(ProjectId(1), false));
        let admin = RatingVisibility::new(UserId(7), Role::Admin, &all);
        assert!(admin.sees_others(ProjectId(1), false));
        assert!(admin.sees_everything());
    }

    #[test]
    fn a_project_not_in_the_list_is_blind() {
        let v = RatingVisibility::new(UserId(7), Role::Admin, &[]);
        assert!(!v.sees_everything());
        assert!(!v.sees_others(ProjectId(3), false));
    }
}
