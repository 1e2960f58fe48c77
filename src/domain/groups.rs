//! Friends of friends: candidates within a radius of each other belong to
//! one group, and so, through them, do candidates further apart (a chain).
//! A group is named by its smallest candidate id, so merging two groups
//! keeps the name of the older one and relabels only the newer.

use std::collections::HashMap;

/// Disjoint sets over arbitrary `i64` labels, each set's root its smallest
/// label (so the root is the group id the database stores).
#[derive(Debug, Default)]
pub struct Friends {
    parent: HashMap<i64, i64>,
}

impl Friends {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            parent: HashMap::with_capacity(n),
        }
    }

    /// Makes `x` known (alone, if it is new).
    pub fn add(&mut self, x: i64) {
        self.parent.entry(x).or_insert(x);
    }

    pub fn root(&mut self, x: i64) -> i64 {
        self.add(x);
        let mut r = x;
        while let Some(&p) = self.parent.get(&r) {
            if p == r {
                break;
            }
            r = p;
        }
        // Path compression keeps a million-member recompute near linear.
        let mut y = x;
        while y != r {
            let next = self.parent[&y];
            self.parent.insert(y, r);
            y = next;
        }
        r
    }

    /// `a` and `b` are friends: their sets become one, rooted at the smaller.
    pub fn join(&mut self, a: i64, b: i64) {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra != rb {
            let (lo, hi) = if ra < rb { (ra, rb) } else { (rb, ra) };
            self.parent.insert(hi, lo);
        }
    }

    /// Every label with the smallest label of its set.
    pub fn groups(&mut self) -> Vec<(i64, i64)> {
        let keys: Vec<i64> = self.parent.keys().copied().collect();
        keys.into_iter().map(|k| (k, self.root(k))).collect()
    }
}

/// The group (smallest member) of each of `ids`, given the pairs of them
/// within the radius.
pub fn group_ids(ids: &[i64], pairs: &[(i64, i64)]) -> HashMap<i64, i64> {
    let mut f = Friends::with_capacity(ids.len());
    for &id in ids {
        f.add(id);
    }
    for &(a, b) in pairs {
        f.join(a, b);
    }
    f.groups().into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_is_one_group_named_by_its_smallest_member() {
        let g = group_ids(&[5, 3, 9, 4], &[(5, 9), (9, 3)]);
        assert_eq!(g[&5], 3);
        assert_eq!(g[&9], 3);
        assert_eq!(g[&3], 3);
        assert_eq!(g[&4], 4);
    }

    #[test]
    fn joining_two_groups_keeps_the_older_name() {
        let mut f = Friends::default();
        f.join(10, 11);
        f.join(2, 3);
        f.join(11, 3);
        assert_eq!(f.root(10), 2);
        assert_eq!(f.root(11), 2);
    }

    #[test]
    fn a_long_chain_resolves() {
        let ids: Vec<i64> = (0..100_000).collect();
        let pairs: Vec<(i64, i64)> = ids.windows(2).map(|w| (w[1], w[0])).collect();
        let g = group_ids(&ids, &pairs);
        assert!(g.values().all(|&r| r == 0));
    }
}
