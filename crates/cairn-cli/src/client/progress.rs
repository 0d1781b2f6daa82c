//! Progress bars on stderr: bytes for `put` and `get`, files for `verify`
//! and `repair`. Hidden bars cost nothing, so commands draw them
//! unconditionally and [`Progress`] decides once whether they show.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Whether progress bars are drawn (stderr is a terminal and `--quiet` is
/// not given), and how.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    shown: bool,
}

impl Progress {
    /// Bars that are drawn if `shown`, else hidden.
    pub fn new(shown: bool) -> Self {
        Self { shown }
    }

    /// Whether bars are drawn (a command may skip work that only feeds a
    /// bar).
    pub fn shown(self) -> bool {
        self.shown
    }

    /// A bar counting bytes up to `total` (a spinner when unknown), or a
    /// hidden one when progress is not shown.
    pub fn bytes(self, total: Option<u64>, message: &str) -> ProgressBar {
        if !self.shown {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = if total.is_some() {
            "{msg:.24!} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}"
        } else {
            "{spinner} {msg:.24!} {bytes} {binary_bytes_per_sec} {elapsed}"
        };
        bar.set_style(
            ProgressStyle::with_template(template)
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    }

    /// A bar counting files.
    pub fn files(self, total: u64, message: &str) -> ProgressBar {
        if !self.shown {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        // The verb stays as the prefix; the message becomes each file's path.
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {wide_msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        bar.set_prefix(message.to_owned());
        bar
    }
}
