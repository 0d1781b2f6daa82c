//! The optional scan of files going in and out (`scan_command`).
//!
//! The configured program runs with the file's path as its last argument,
//! standard input closed, and its output captured for the message. Exit 0
//! lets the file through; anything else blocks it: a put does not start,
//! a fetched file is not moved into place. The scan needs a file, so the
//! streaming variants of store and fetch refuse to run while a scan is
//! configured rather than skip it.

use std::path::Path;

/// Most of a scanner's output kept for the message.
const OUTPUT_KEPT: usize = 2000;

/// Why a scan did not let a file through.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScanError {
    /// The program ran and refused the file.
    #[error("{program} refused {} ({status}){}", path.display(), output_suffix(.output))]
    Refused {
        /// The program.
        program: String,
        /// The file scanned.
        path: std::path::PathBuf,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// What it printed (the start of it).
        output: String,
    },
    /// The program could not be run.
    #[error("cannot run the scan command {program}: {source}")]
    Failed {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// A stream cannot be scanned.
    #[error(
        "a scan_command is configured, and it needs a file: store or fetch a file, not a stream"
    )]
    NeedsFile,
}

fn output_suffix(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// Runs `argv` on `path`; Ok when it exits 0.
///
/// # Errors
/// [`ScanError::Refused`] for a non-zero exit, [`ScanError::Failed`] if the
/// program cannot be started.
pub async fn scan(argv: &[String], path: &Path) -> Result<(), ScanError> {
    let program = argv.first().cloned().unwrap_or_default();
    let output = tokio::process::Command::new(&program)
        .args(&argv[1..])
        .arg(path)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|source| ScanError::Failed {
            program: program.clone(),
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let err = String::from_utf8_lossy(&output.stderr);
    if !err.trim().is_empty() {
        if !text.is_empty() {
            text.push_str("; ");
        }
        text.push_str(err.trim());
    }
    if text.len() > OUTPUT_KEPT {
        let mut end = OUTPUT_KEPT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    Err(ScanError::Refused {
        program,
        path: path.to_owned(),
        status: output.status,
        output: text.replace('\n', " "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["sh".into(), "-c".into(), script.into(), "scan".into()]
    }

    #[tokio::test]
    async fn exit_status_decides_and_the_output_explains() {
        let file = tempfile::NamedTempFile::new().unwrap();
        scan(&sh("test -f \"$1\""), file.path()).await.unwrap();
        let err = scan(
            &sh("echo \"$1: Eicar-Signature FOUND\"; exit 1"),
            file.path(),
        )
        .await
        .unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ScanError::Refused { .. }), "{message}");
        assert!(message.contains("Eicar-Signature FOUND"), "{message}");
        assert!(message.contains("exit status: 1"), "{message}");
        let err = scan(&["/no/such/scanner".to_owned()], file.path())
            .await
            .unwrap_err();
        assert!(matches!(err, ScanError::Failed { .. }), "{err}");
    }
}
