//! Where the client's settings and passphrase come from.
//!
//! The library takes a [`ClientConfig`] and a passphrase and never reads
//! files or the environment; this module is the binary's side of that:
//!
//! - the config file is `--config FILE`, else `$CAIRN_CONFIG`, else
//!   `~/.config/cairn/config.toml`;
//! - the passphrase is `$CAIRN_PASSPHRASE`, else the first line of
//!   `--passphrase-file FILE`, else asked on the terminal. With none of
//!   these (a script, a pipe) it is an error that says how to give one,
//!   never a hang.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use cairn_client::ClientConfig;
use zeroize::Zeroizing;

/// The environment variable naming the config file.
pub const CONFIG_ENV: &str = "CAIRN_CONFIG";
/// The environment variable holding the passphrase.
pub const PASSPHRASE_ENV: &str = "CAIRN_PASSPHRASE";

/// The config file to use: `explicit` (from `--config`), else
/// `$CAIRN_CONFIG`, else `~/.config/cairn/config.toml`; `None` when none
/// is given and `$HOME` is not set ([`no_home`] says so).
pub fn locate(explicit: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path);
    }
    if let Some(path) = std::env::var_os(CONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|home| {
            PathBuf::from(home)
                .join(".config")
                .join("cairn")
                .join("config.toml")
        })
}

/// Why there is no config file to use: [`locate`] found none.
pub fn no_home() -> anyhow::Error {
    anyhow!("$HOME is not set: name the config file with --config FILE or ${CONFIG_ENV}")
}

/// The refusal to replace the config file at `path` without `--force`.
pub fn already_exists(path: &Path) -> anyhow::Error {
    anyhow!(
        "{} already exists; pass --force to replace it (or --config FILE to write another)",
        path.display()
    )
}

/// Reads and checks the config file at `path`.
///
/// # Errors
/// A missing file (with a hint to run `cairn init`), an unreadable one, or
/// settings the library refuses.
pub fn load(path: &Path) -> Result<ClientConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no config file at {}: create one with `cairn init --user NAME --server URL#NODE_ID …`, \
             or name another with --config FILE or ${CONFIG_ENV}",
            path.display()
        ),
        Err(e) => {
            return Err(e)
                .with_context(|| format!("cannot read the config file {}", path.display()));
        }
    };
    ClientConfig::parse(&text).with_context(|| format!("in {}", path.display()))
}

/// The config file, if there is one at `path` (for commands that can do
/// without it).
///
/// # Errors
/// As [`load`], except for a missing file.
pub fn load_if_present(path: &Path) -> Result<Option<ClientConfig>> {
    if path.exists() {
        load(path).map(Some)
    } else {
        Ok(None)
    }
}

/// Writes `config` to `path` (creating its directory), replacing an
/// existing file only if `force`. The file is written beside its final
/// name and renamed into place, so a crash leaves the old file or the new
/// one, never half of one.
///
/// # Errors
/// An existing file without `force`, or an I/O failure.
pub fn write(path: &Path, config: &ClientConfig, force: bool) -> Result<()> {
    if !force && path.exists() {
        return Err(already_exists(path));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    let mut file = tempfile::Builder::new()
        .prefix(".config.")
        .suffix(".toml-partial")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    std::io::Write::write_all(&mut file, config.to_toml().as_bytes())
        .and_then(|()| file.as_file().sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    // tempfile creates files readable by their owner only; a config holds
    // no secret, so give it the usual mode.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file
            .as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    if !force && path.exists() {
        bail!(
            "{} appeared meanwhile; pass --force to replace it",
            path.display()
        );
    }
    file.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Where the passphrase comes from: `$CAIRN_PASSPHRASE`, else the first
/// line of `--passphrase-file`, else the terminal (if standard input is
/// one).
#[derive(Debug, Clone)]
pub struct PassphraseSource {
    /// `--passphrase-file`.
    pub file: Option<PathBuf>,
    /// Whether standard input is a terminal to ask on.
    pub terminal: bool,
}

impl PassphraseSource {
    /// The passphrase of `user`, asked on the terminal if neither the
    /// environment nor a file gives it.
    ///
    /// # Errors
    /// An unreadable or empty passphrase file, an empty answer, or no
    /// source at all: no terminal to ask on (the error says how to give
    /// one, never a hang).
    pub fn get(&self, user: &str) -> Result<Zeroizing<String>> {
        match self.given()? {
            Some(passphrase) => Ok(passphrase),
            None => self.ask(user),
        }
    }

    /// The passphrase of `user` if one is at hand: given, or asked when
    /// there is a terminal; `None` otherwise.
    ///
    /// # Errors
    /// As [`get`](Self::get), except for having no source.
    pub fn if_at_hand(&self, user: &str) -> Result<Option<Zeroizing<String>>> {
        match self.given()? {
            Some(passphrase) => Ok(Some(passphrase)),
            None if self.terminal => self.ask(user).map(Some),
            None => Ok(None),
        }
    }

    /// `$CAIRN_PASSPHRASE`, else the first line of `--passphrase-file`.
    fn given(&self) -> Result<Option<Zeroizing<String>>> {
        if let Some(value) = std::env::var_os(PASSPHRASE_ENV).filter(|v| !v.is_empty()) {
            let value = value
                .into_string()
                .map_err(|_| anyhow!("${PASSPHRASE_ENV} is not valid UTF-8"))?;
            return Ok(Some(Zeroizing::new(value)));
        }
        if let Some(file) = &self.file {
            let text =
                Zeroizing::new(std::fs::read_to_string(file).with_context(|| {
                    format!("cannot read the passphrase file {}", file.display())
                })?);
            let line = text.lines().next().unwrap_or("");
            if line.is_empty() {
                bail!("the passphrase file {} is empty", file.display());
            }
            return Ok(Some(Zeroizing::new(line.to_owned())));
        }
        Ok(None)
    }

    /// Asks on the terminal.
    fn ask(&self, user: &str) -> Result<Zeroizing<String>> {
        if !self.terminal {
            bail!(
                "no passphrase for {user}: set ${PASSPHRASE_ENV} or pass --passphrase-file FILE \
                 (there is no terminal to ask on)"
            );
        }
        let answer = Zeroizing::new(
            rpassword::prompt_password(format!("Passphrase for {user}: "))
                .context("cannot read the passphrase from the terminal")?,
        );
        if answer.is_empty() {
            bail!("the passphrase is empty");
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_path_wins() {
        assert_eq!(
            locate(Some(PathBuf::from("/tmp/x.toml"))),
            Some(PathBuf::from("/tmp/x.toml"))
        );
    }

    #[test]
    fn writing_refuses_to_replace_without_force() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("deep/er/config.toml");
        let id = cairn_net::NodeId(cairn_core::Id::of(b"n"));
        let server = format!("tcp://127.0.0.1:7001#{id}").parse().unwrap();
        let config = ClientConfig::new("alice", vec![server]);
        write(&file, &config, false).unwrap();
        assert_eq!(load(&file).unwrap(), config);
        let err = write(&file, &config, false).unwrap_err();
        assert!(err.to_string().contains("--force"), "{err}");
        let mut other = config.clone();
        other.user = "bob".into();
        write(&file, &other, true).unwrap();
        assert_eq!(load(&file).unwrap().user, "bob");
        let leftovers = std::fs::read_dir(file.parent().unwrap()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    #[test]
    fn a_missing_file_says_how_to_make_one() {
        let err = load(Path::new("/nonexistent/cairn.toml")).unwrap_err();
        assert!(err.to_string().contains("cairn init"), "{err}");
        assert!(
            load_if_present(Path::new("/nonexistent/cairn.toml"))
                .unwrap()
                .is_none()
        );
    }
}
