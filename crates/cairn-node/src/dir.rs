//! A node's directory: what `cairn node init` creates and `cairn node run`
//! reads.
//!
//! ```text
//! DIR/node.toml     settings (see `config`)
//! DIR/node.crt      the node's self-signed certificate (PEM)
//! DIR/node.key      its private key (PKCS#8 PEM, mode 0600)
//! DIR/meta.redb     users, references, index entries (see cairn-store)
//! DIR/shards/ …     the shard store
//! ```
//!
//! The private key is the node's identity: whoever holds it can pose as the
//! node to clients (but still cannot read their data). It is written with
//! owner-only permissions and never logged.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_net::NodeAddress;
use cairn_net::identity::{IdentityError, NodeIdentity};

use crate::config::{ConfigError, NodeConfig};

/// File names inside a node directory.
pub const CONFIG_FILE: &str = "node.toml";
/// The certificate.
pub const CERTIFICATE_FILE: &str = "node.crt";
/// The private key.
pub const KEY_FILE: &str = "node.key";

/// Why a node directory could not be created or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DirError {
    /// The directory already holds a node.
    #[error("{0} already holds a cairn node; choose another directory")]
    Exists(PathBuf),
    /// The directory holds no node.
    #[error("{0} holds no cairn node: create one with `cairn node init --dir {0} --listen URL`")]
    NotANode(PathBuf),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The settings are invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The key or certificate is invalid.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The store could not be created.
    #[error("cannot create the store: {0}")]
    Store(#[from] cairn_store::OpenError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DirError + '_ {
    move |source| DirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Creates a node in `dir`, listening on `listen`: its settings, its key
/// pair and certificate (naming the listen hosts), and an empty store.
///
/// # Errors
/// [`DirError::Exists`] if `dir` already holds a node (nothing is
/// changed), or the first failure creating it.
pub fn init(dir: &Path, listen: Vec<NodeAddress>) -> Result<(NodeIdentity, NodeConfig), DirError> {
    let config = NodeConfig {
        listen,
        ..NodeConfig::default()
    };
    config.validate()?;
    if [CONFIG_FILE, KEY_FILE, "meta.redb", "shards"]
        .iter()
        .any(|name| dir.join(name).exists())
    {
        return Err(DirError::Exists(dir.to_owned()));
    }
    fs::create_dir_all(dir).map_err(io_error(dir))?;
    let identity = NodeIdentity::generate(&config.hosts())?;
    write_private(&dir.join(KEY_FILE), identity.key_pem().as_bytes())?;
    let certificate = dir.join(CERTIFICATE_FILE);
    fs::write(&certificate, identity.certificate_pem()).map_err(io_error(&certificate))?;
    let config_path = dir.join(CONFIG_FILE);
    fs::write(&config_path, config.to_toml()).map_err(io_error(&config_path))?;
    drop(cairn_store::Store::open(
        dir,
        cairn_store::StoreOptions::default(),
    )?);
    Ok((identity, config))
}

/// Reads the settings and identity of the node in `dir`.
///
/// # Errors
/// [`DirError::NotANode`] if there is no node there, otherwise the first
/// file that cannot be read or parsed.
pub fn load(dir: &Path) -> Result<(NodeIdentity, NodeConfig), DirError> {
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.exists() {
        return Err(DirError::NotANode(dir.to_owned()));
    }
    let text = fs::read_to_string(&config_path).map_err(io_error(&config_path))?;
    let config = NodeConfig::parse(&text)?;
    let certificate_path = dir.join(CERTIFICATE_FILE);
    let certificate = fs::read_to_string(&certificate_path).map_err(io_error(&certificate_path))?;
    let key_path = dir.join(KEY_FILE);
    let key = zeroize::Zeroizing::new(fs::read_to_string(&key_path).map_err(io_error(&key_path))?);
    let identity = NodeIdentity::from_pem(&certificate, &key)?;
    Ok((identity, config))
}

/// The addresses clients use for this node: each listen address with the
/// node's id.
pub fn addresses(identity: &NodeIdentity, config: &NodeConfig) -> Vec<NodeAddress> {
    config
        .listen
        .iter()
        .map(|a| a.clone().with_node_id(identity.id()))
        .collect()
}

/// Writes a file only its owner can read, creating it (never replacing one).
fn write_private(path: &Path, contents: &[u8]) -> Result<(), DirError> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(io_error(path))?;
    file.write_all(contents).map_err(io_error(path))?;
    file.sync_all().map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_then_load_and_refuse_a_second_init() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("n1");
        let listen = vec!["tcp://127.0.0.1:7001".parse().unwrap()];
        let (identity, config) = init(&node, listen.clone()).unwrap();
        let (loaded, loaded_config) = load(&node).unwrap();
        assert_eq!(loaded.id(), identity.id());
        assert_eq!(loaded_config, config);
        let printed = addresses(&loaded, &loaded_config);
        assert_eq!(
            printed[0].to_string(),
            format!("tcp://127.0.0.1:7001#{}", identity.id())
        );
        assert!(matches!(init(&node, listen), Err(DirError::Exists(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(node.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(load(dir.path()), Err(DirError::NotANode(_))));
    }
}
