//! Remote paths: the names files have in a user's namespace.
//!
//! A [`RemotePath`] is what `put` names a file and `get`, `ls` and `rm`
//! look up. It never reaches a node: the index stores entries under a keyed
//! hash of it ([`crate::index::entry_name`]) and seals the path inside the
//! entry.

use std::fmt;
use std::str::FromStr;

/// Longest remote path, in bytes.
pub const MAX_PATH_LEN: usize = 4096;

/// A path in a user's remote namespace: `/`-separated components, relative
/// to the user's root, in canonical form.
///
/// Parsing drops one leading `/` (`/photos/a.jpg` and `photos/a.jpg` are the
/// same path) and refuses an empty path, an empty component (`a//b`, or a
/// trailing `/`), a `.` or `..` component, a NUL byte, and more than
/// [`MAX_PATH_LEN`] bytes. Any other UTF-8 is allowed, so that local file
/// names survive the round trip. Paths order and compare as strings.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RemotePath(String);

/// Why a string is not a remote path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// Nothing left once a leading `/` is dropped.
    #[error("the remote path is empty")]
    Empty,
    /// Over [`MAX_PATH_LEN`] bytes.
    #[error("the remote path is {len} bytes long, over the limit of {max}")]
    TooLong {
        /// Its length in bytes (after dropping a leading `/`).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Contains a NUL byte.
    #[error("the remote path has a NUL byte at byte {position}")]
    Nul {
        /// Byte offset of the first NUL (after dropping a leading `/`).
        position: usize,
    },
    /// A component is empty: two `/` in a row, or a `/` at the end.
    #[error("component {index} of the remote path is empty: no \"//\" and no \"/\" at the end")]
    EmptyComponent {
        /// Zero-based index of the component.
        index: usize,
    },
    /// A component is `.` or `..`: remote paths have no relative parts.
    #[error(
        "component {index} of the remote path is {component:?}: remote paths cannot use . or .."
    )]
    DotComponent {
        /// Zero-based index of the component.
        index: usize,
        /// `"."` or `".."`.
        component: &'static str,
    },
}

impl RemotePath {
    /// The path as a string, without a leading `/`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The components, first to last; never empty.
    pub fn components(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// The last component: the file's own name.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }

    /// The path without its last component, or `None` for a top-level
    /// path.
    pub fn parent(&self) -> Option<RemotePath> {
        self.0
            .rsplit_once('/')
            .map(|(parent, _)| RemotePath(parent.to_owned()))
    }

    /// This path with `relative` (itself a valid path, without a leading
    /// `/`) appended, as `put -r` names the files of a directory.
    ///
    /// # Errors
    /// [`PathError`] if `relative` is not a valid path or the result is too
    /// long.
    pub fn join(&self, relative: &str) -> Result<RemotePath, PathError> {
        let relative: RemotePath = relative.parse()?;
        format!("{}/{}", self.0, relative.0).parse()
    }

    /// Whether `ls prefix` lists this path: `prefix` names a leading run of
    /// whole components. Leading and trailing `/` in `prefix` are ignored,
    /// and an empty prefix (or `/`) lists everything. `photos` lists
    /// `photos` and `photos/a.jpg` but not `photosX/b`.
    pub fn starts_with_prefix(&self, prefix: &str) -> bool {
        let prefix = prefix.trim_start_matches('/').trim_end_matches('/');
        if prefix.is_empty() {
            return true;
        }
        match self.0.strip_prefix(prefix) {
            Some(rest) => rest.is_empty() || rest.starts_with('/'),
            None => false,
        }
    }
}

impl FromStr for RemotePath {
    type Err = PathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let path = s.strip_prefix('/').unwrap_or(s);
        if path.is_empty() {
            return Err(PathError::Empty);
        }
        if path.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong {
                len: path.len(),
                max: MAX_PATH_LEN,
            });
        }
        if let Some(position) = path.bytes().position(|b| b == 0) {
            return Err(PathError::Nul { position });
        }
        for (index, component) in path.split('/').enumerate() {
            match component {
                "" => return Err(PathError::EmptyComponent { index }),
                "." => {
                    return Err(PathError::DotComponent {
                        index,
                        component: ".",
                    });
                }
                ".." => {
                    return Err(PathError::DotComponent {
                        index,
                        component: "..",
                    });
                }
                _ => {}
            }
        }
        Ok(Self(path.to_owned()))
    }
}

impl fmt::Display for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RemotePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemotePath({:?})", self.0)
    }
}

#[cfg(test)]
pub(crate) mod strategies {
    //! Proptest strategies for paths, shared with the index's tests.

    use proptest::prelude::*;

    use super::RemotePath;

    fn component() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z]{1,8}",
            "[^/\u{0}]{1,12}",
            Just(".hidden".to_owned()),
            Just("...".to_owned()),
        ]
        .prop_filter("not . or ..", |c| c != "." && c != "..")
    }

    /// Valid paths of one to five components, some with odd characters.
    pub fn remote_path() -> impl Strategy<Value = RemotePath> {
        prop::collection::vec(component(), 1..6).prop_map(|c| c.join("/").parse().unwrap())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::strategies::remote_path;
    use super::*;

    fn path(s: &str) -> RemotePath {
        s.parse().unwrap()
    }

    #[test]
    fn paths_are_normalised_or_refused_with_a_reason() {
        assert_eq!(path("/photos/a.jpg"), path("photos/a.jpg"));
        assert_eq!(path("/photos/a.jpg").as_str(), "photos/a.jpg");
        assert_eq!(path("é/ü b.txt").to_string(), "é/ü b.txt");
        assert_eq!(path("...").as_str(), "...");
        assert_eq!(path(".hidden/a").as_str(), ".hidden/a");

        let err = |s: &str| s.parse::<RemotePath>().unwrap_err();
        assert_eq!(err(""), PathError::Empty);
        assert_eq!(err("/"), PathError::Empty);
        assert_eq!(err("//a"), PathError::EmptyComponent { index: 0 });
        assert_eq!(err("a//b"), PathError::EmptyComponent { index: 1 });
        assert_eq!(err("a/"), PathError::EmptyComponent { index: 1 });
        assert_eq!(
            err("a/./b"),
            PathError::DotComponent {
                index: 1,
                component: "."
            }
        );
        assert_eq!(
            err("../etc"),
            PathError::DotComponent {
                index: 0,
                component: ".."
            }
        );
        assert_eq!(err("a\0b"), PathError::Nul { position: 1 });
        let longest = "x".repeat(MAX_PATH_LEN);
        assert_eq!(path(&longest).as_str().len(), MAX_PATH_LEN);
        assert_eq!(path(&format!("/{longest}")).as_str().len(), MAX_PATH_LEN);
        assert_eq!(
            err(&format!("{longest}y")),
            PathError::TooLong {
                len: MAX_PATH_LEN + 1,
                max: MAX_PATH_LEN
            }
        );
        assert_eq!(
            err("a/../b").to_string(),
            "component 1 of the remote path is \"..\": remote paths cannot use . or .."
        );
    }

    #[test]
    fn path_helpers() {
        let p = path("photos/2024/a.jpg");
        assert_eq!(p.file_name(), "a.jpg");
        assert_eq!(p.parent(), Some(path("photos/2024")));
        assert_eq!(path("top").parent(), None);
        assert_eq!(path("top").file_name(), "top");
        assert_eq!(
            p.components().collect::<Vec<_>>(),
            ["photos", "2024", "a.jpg"]
        );
        assert_eq!(path("dir").join("sub/f").unwrap(), path("dir/sub/f"));
        assert_eq!(
            path("dir").join("../f"),
            Err(PathError::DotComponent {
                index: 0,
                component: ".."
            })
        );
        assert!(path("dir").join("x".repeat(MAX_PATH_LEN).as_str()).is_err());
    }

    #[test]
    fn prefixes_match_whole_components() {
        let p = path("photos/a.jpg");
        for yes in ["", "/", "photos", "/photos", "photos/", "photos/a.jpg"] {
            assert!(p.starts_with_prefix(yes), "{yes:?}");
        }
        for no in ["photo", "photos/a", "photos/a.jpg/x", "photosX", "a.jpg"] {
            assert!(!p.starts_with_prefix(no), "{no:?}");
        }
        assert!(!path("photosX/b").starts_with_prefix("photos"));
    }

    proptest! {
        #[test]
        fn paths_round_trip_through_text(p in remote_path()) {
            prop_assert_eq!(p.to_string().parse::<RemotePath>().unwrap(), p.clone());
            prop_assert_eq!(format!("/{p}").parse::<RemotePath>().unwrap(), p);
        }

        #[test]
        fn prefix_matching_is_component_prefix(p in remote_path(), q in remote_path()) {
            let pc: Vec<&str> = p.components().collect();
            let qc: Vec<&str> = q.components().collect();
            prop_assert_eq!(p.starts_with_prefix(q.as_str()), pc.starts_with(&qc));
            prop_assert!(p.starts_with_prefix(""));
            prop_assert!(p.starts_with_prefix(p.as_str()));
            if let Some(parent) = p.parent() {
                prop_assert!(p.starts_with_prefix(parent.as_str()));
            }
        }

    }
}
