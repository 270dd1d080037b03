//! Application dependencies, checked before every start or stop script launch (seed:
//! `dependencyCheck()`):
//! - `start_sequence a,b,c`: b starts after a — once a is NORMAL with `strict=yes`, once a's
//!   start was launched with `strict=no`;
//! - `stop_sequence a,b,c`: b stops after a has stopped;
//! - `parent_child p,c` (one level): c starts only while p is NORMAL (a parent that cannot
//!   start keeps its child down); when p is stopped, c is stopped first.
use super::config::{Dependency, DependencyType};
use super::state::AppState;

/// What the rules read of another app: its state, and whether its start script was launched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Peer {
    pub(super) state: AppState,
    pub(super) start_launched: bool,
}

#[derive(Debug, Default, Clone)]
pub(super) struct Dependencies(Vec<Dependency>);

impl Dependencies {
    pub(super) fn new(deps: &[Dependency]) -> Self {
        Self(deps.to_vec())
    }

    fn of(&self, kind: DependencyType) -> impl Iterator<Item = &Dependency> {
        self.0.iter().filter(move |d| d.dependency_type == kind)
    }

    /// The children of `parent` (its `parent_child` dependencies).
    pub(super) fn children(&self, parent: &str) -> Vec<String> {
        let pairs = self.of(DependencyType::ParentChild);
        pairs.filter(|d| d.dependency_list[0] == parent).map(|d| d.dependency_list[1].clone()).collect()
    }

    /// `peer`: the app of a name, if it is configured.
    pub(super) fn may_start(&self, name: &str, peer: impl Fn(&str) -> Option<Peer>) -> bool {
        let parents_up = self
            .of(DependencyType::ParentChild)
            .filter(|d| d.dependency_list[1] == name)
            .all(|d| peer(&d.dependency_list[0]).is_none_or(|p| p.state == AppState::Normal));
        let predecessors_started = self.of(DependencyType::StartSequence).all(|d| {
            match predecessor(&d.dependency_list, name).and_then(&peer) {
                None => true,
                Some(p) if d.strict => p.state == AppState::Normal,
                Some(p) => p.state != AppState::ToStart || p.start_launched,
            }
        });
        parents_up && predecessors_started
    }

    pub(super) fn may_stop(&self, name: &str, peer: impl Fn(&str) -> Option<Peer>) -> bool {
        let stopping = |n: &str| peer(n).is_some_and(|p| p.state == AppState::ToStop);
        let children_down = self.children(name).iter().all(|c| !stopping(c));
        let predecessors_down = self
            .of(DependencyType::StopSequence)
            .all(|d| predecessor(&d.dependency_list, name).is_none_or(|p| !stopping(p)));
        children_down && predecessors_down
    }
}

/// The app right before `name` in `list`.
fn predecessor<'a>(list: &'a [String], name: &str) -> Option<&'a str> {
    let at = list.iter().position(|n| n == name)?;
    at.checked_sub(1).map(|p| list[p].as_str())
}
