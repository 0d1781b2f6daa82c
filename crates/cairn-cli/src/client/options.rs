//! The options every client command shares, resolved once from the
//! global arguments ([`Options`]): how results are printed, the config
//! file, and where the passphrase comes from.
//!
//! The config file is located once and read at most once, when a command
//! first needs it ([`ConfigFile`]): `init` writes it rather than reads it,
//! `get --cap` with `--server` does without it, and `put -r` of a tree with
//! nothing to store never opens a client; so none of them fails for a
//! config it does not use, and a bad command line is reported as bad usage
//! before a missing or broken config.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;
use cairn_client::{ClientConfig, RemotePath};

use super::config_file::{self, PassphraseSource};
use super::error::usage;
use super::output::Output;
use crate::cli::GlobalArgs;

/// What every client command shares.
#[derive(Debug)]
pub struct Options {
    /// How results are printed (`--json`, `--quiet`, progress bars).
    pub output: Output,
    /// The client config file (`--config`, `$CAIRN_CONFIG` or
    /// `~/.config/cairn/config.toml`).
    pub config: ConfigFile,
    /// Where the passphrase comes from (`$CAIRN_PASSPHRASE`,
    /// `--passphrase-file` or the terminal).
    pub passphrase: PassphraseSource,
}

impl Options {
    /// The options the global arguments ask for. Nothing is read yet.
    pub fn resolve(global: GlobalArgs) -> Self {
        Self {
            output: Output::new(global.json, global.quiet),
            config: ConfigFile::locate(global.config),
            passphrase: PassphraseSource {
                file: global.passphrase_file,
                terminal: std::io::stdin().is_terminal(),
            },
        }
    }
}

/// The client config file: where it is, decided once, and what it says,
/// read and checked the first time a command asks and then kept.
#[derive(Debug)]
pub struct ConfigFile {
    /// `None` when there is no `--config`, no `$CAIRN_CONFIG` and no
    /// `$HOME`.
    path: Option<PathBuf>,
    loaded: OnceLock<ClientConfig>,
}

impl ConfigFile {
    fn locate(explicit: Option<PathBuf>) -> Self {
        Self {
            path: config_file::locate(explicit),
            loaded: OnceLock::new(),
        }
    }

    /// Where the config file is (whether or not it exists).
    ///
    /// # Errors
    /// None is named and `$HOME` is not set.
    pub fn path(&self) -> Result<&Path> {
        self.path.as_deref().ok_or_else(config_file::no_home)
    }

    /// The config.
    ///
    /// # Errors
    /// No file (the error says how to make one), an unreadable one, or
    /// settings the library refuses.
    pub fn load(&self) -> Result<&ClientConfig> {
        if let Some(config) = self.loaded.get() {
            return Ok(config);
        }
        let config = config_file::load(self.path()?)?;
        Ok(self.loaded.get_or_init(|| config))
    }

    /// The config, if there is a file (for commands that can do without).
    ///
    /// # Errors
    /// As [`load`](Self::load), except for a missing file.
    pub fn load_if_present(&self) -> Result<Option<&ClientConfig>> {
        if let Some(config) = self.loaded.get() {
            return Ok(Some(config));
        }
        Ok(config_file::load_if_present(self.path()?)?
            .map(|config| self.loaded.get_or_init(|| config)))
    }
}

/// A remote path given on the command line.
pub fn remote_arg(text: &str) -> Result<RemotePath> {
    text.parse()
        .map_err(|e| usage(format!("{text:?} is not a valid remote path: {e}")))
}
