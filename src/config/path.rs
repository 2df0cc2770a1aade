//! Key paths such as `apps[0].limits.max_event_data_bytes`: segments, rendering, parents.
//! Must not know the configuration schema; it only names places in a TOML tree.

/// One step of a key path. Indices order numerically, so `apps[2]` sorts before `apps[10]`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// The printed form of a path: `apps[0].limits.max_event_data_bytes`.
pub(super) fn render(segs: &[Seg]) -> String {
    segs.iter().fold(String::new(), |path, seg| match seg {
        Seg::Key(key) => child_key(&path, key),
        Seg::Index(index) => child_index(&path, *index),
    })
}

/// `parent.key`, or `key` at the top level.
pub(super) fn child_key(parent: &str, key: &str) -> String {
    if parent.is_empty() { key.to_owned() } else { format!("{parent}.{key}") }
}

/// `parent[index]`.
pub(super) fn child_index(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// The path one level up (`apps[0].id` → `apps[0]` → `apps`), `None` at the top.
pub(super) fn parent(path: &str) -> Option<&str> {
    let cut = path.rfind(['.', '['])?;
    Some(&path[..cut])
}

/// The path itself, then each of its ancestors up to the top-level key.
pub(super) fn self_and_ancestors(path: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(path), |path| parent(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_and_indices() {
        let segs = [Seg::Key("apps".into()), Seg::Index(0), Seg::Key("id".into())];
        assert_eq!(render(&segs), "apps[0].id");
        assert_eq!(render(&[]), "");
    }

    #[test]
    fn walks_up() {
        let up: Vec<&str> = self_and_ancestors("apps[0].limits.x").collect();
        assert_eq!(up, ["apps[0].limits.x", "apps[0].limits", "apps[0]", "apps"]);
    }

    #[test]
    fn indices_sort_numerically() {
        assert!(Seg::Index(2) < Seg::Index(10));
    }
}
