//! `CAIRN_DIRECT_IO`: the off switch of direct I/O for gets into a file.
//!
//! The client library writes large output files with direct I/O, past the
//! page cache (`cairn_client::output`), and reads no environment itself;
//! every client the command opens asks here. The switch exists for file
//! systems that take `O_DIRECT` but do it badly, and to measure the
//! difference (`cairn bench` with and without it).

/// The environment variable; `0` (or `false`, `off`, `no`) turns direct
/// I/O off, anything else leaves it on.
pub const ENV: &str = "CAIRN_DIRECT_IO";

/// Whether gets may write large files with direct I/O, as `CAIRN_DIRECT_IO`
/// says (on when it is unset).
pub fn from_env() -> bool {
    std::env::var_os(ENV).is_none_or(|v| !is_off(&v.to_string_lossy()))
}

/// Whether `value` of `CAIRN_DIRECT_IO` turns direct I/O off.
fn is_off(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "off" | "no"
    )
}

#[cfg(test)]
mod tests {
    use super::is_off;

    #[test]
    fn zero_and_its_spellings_turn_it_off_and_nothing_else_does() {
        for off in ["0", "false", "OFF", " no "] {
            assert!(is_off(off), "{off:?}");
        }
        for on in ["", "1", "true", "on", "yes", "direct"] {
            assert!(!is_off(on), "{on:?}");
        }
    }
}
