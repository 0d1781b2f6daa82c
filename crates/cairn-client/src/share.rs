//! Sharing a file: the capability that names its manifest.
//!
//! A stored file's entry holds its capability. An inline file (see
//! [`Content::Inline`]) has none: it is stored as chunks and a manifest
//! first (convergent, so sharing twice stores nothing new), and its entry
//! rewritten to point at them, so that the capability keeps working
//! whatever becomes of the entry.

use cairn_core::Capability;

use crate::fetch::{self, FetchError};
use crate::index::{Content, RemotePath};
use crate::store::{Put, Upload};
use crate::transport::Transport;

/// The capability of the file named `remote`; see the module docs.
///
/// # Errors
/// [`FetchError::NotFound`] if there is no such file (or it was removed);
/// for an inline file, [`FetchError::Store`] if storing it failed.
pub(crate) async fn capability<T: Transport>(
    put: &Put<'_, T>,
    remote: &RemotePath,
) -> Result<Capability, FetchError> {
    let file = fetch::file_entry(put.index, remote).await?;
    let bytes = match file.content {
        Content::Stored(capability) => return Ok(capability),
        Content::Inline(bytes) => bytes,
        Content::InlineUnread => return Err(FetchError::Unread),
    };
    let reader = std::io::Cursor::new(bytes.to_vec());
    let uploaded = match put.upload(reader, 0, &|_| {}).await {
        Ok(Upload::Chunks(uploaded)) => uploaded,
        Ok(Upload::Inline(_)) => unreachable!("with inline_max 0 every input is sealed"),
        Err(e) => return Err(FetchError::Store(Box::new(e))),
    };
    put.write_file_entry(
        remote,
        uploaded.capability.clone(),
        &uploaded.manifest,
        file.modified_unix_ms,
    )
    .await
    .map_err(|e| FetchError::Store(Box::new(e)))?;
    Ok(uploaded.capability)
}
