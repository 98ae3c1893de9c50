//! Atomic file writes: a reader (or a crash) sees the old file or the new one, never half
//! of one. Checkpoints and merged models go through here.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Where `target`'s content is staged before the rename: the same directory (so the rename
/// stays on one filesystem), hidden, and keeping the extension (MLX's safetensors writer
/// insists on `.safetensors`).
pub fn staging_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    target.with_file_name(format!(".tmp-{}-{name}", std::process::id()))
}

/// Writes `bytes` to `target` atomically (write + fsync a staging file, then rename).
pub fn write_bytes(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_with(
        target,
        |staging| {
            let mut file = fs::File::create(staging)?;
            file.write_all(bytes)?;
            file.sync_all()
        },
        |e| e,
    )
}

/// Lets `write` produce the file at the staging path, then renames it over `target`.
/// On failure the staging file is removed and `target` is untouched.
pub fn write_with<E>(
    target: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
    rename_failed: impl FnOnce(std::io::Error) -> E,
) -> Result<(), E> {
    let staging = staging_path(target);
    let result = write(&staging).and_then(|()| fs::rename(&staging, target).map_err(rename_failed));
    if result.is_err() {
        let _ = fs::remove_file(&staging);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_staging_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write_bytes(&target, b"old").unwrap();
        write_bytes(&target, b"new").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.json");
        write_bytes(&target, b"old").unwrap();
        let err = write_with(
            &target,
            |staging| {
                fs::write(staging, b"half")?;
                Err(std::io::Error::other("disk full"))
            },
            |e| e,
        );
        assert!(err.is_err());
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
