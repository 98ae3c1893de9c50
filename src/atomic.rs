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

/// Builds a directory in a hidden staging sibling of `target`, then moves it into place:
/// a failure (or a crash) leaves no half-written `target`, and an existing `target` is
/// only replaced once the new one is complete. `build` fills the staging directory.
pub fn write_dir<T, E>(
    target: &Path,
    build: impl FnOnce(&Path) -> Result<T, E>,
    io_failed: impl Fn(&Path, std::io::Error) -> E,
) -> Result<T, E> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let sibling = |tag: &str| target.with_file_name(format!(".{name}.{tag}-{}", std::process::id()));
    let (staging, old) = (sibling("tmp"), sibling("old"));
    if let Some(parent) = target.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| io_failed(parent, e))?;
    }
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir(&staging).map_err(|e| io_failed(&staging, e))?;
    let result = build(&staging).and_then(|value| {
        let replacing = target.exists();
        if replacing {
            fs::rename(target, &old).map_err(|e| io_failed(target, e))?;
        }
        if let Err(e) = fs::rename(&staging, target) {
            if replacing {
                let _ = fs::rename(&old, target);
            }
            return Err(io_failed(target, e));
        }
        if replacing {
            let _ = fs::remove_dir_all(&old);
        }
        Ok(value)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
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

    #[test]
    fn a_directory_appears_whole_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let io = |_: &Path, e: std::io::Error| e;
        write_dir(&target, |d| fs::write(d.join("a"), b"1"), io).unwrap();
        assert_eq!(fs::read(target.join("a")).unwrap(), b"1");

        let err: std::io::Result<()> = write_dir(
            &target,
            |d| {
                fs::write(d.join("a"), b"2")?;
                Err(std::io::Error::other("disk full"))
            },
            io,
        );
        assert!(err.is_err());
        assert_eq!(fs::read(target.join("a")).unwrap(), b"1", "the old directory stays");
        write_dir(&target, |d| fs::write(d.join("b"), b"3"), io).unwrap();
        assert!(!target.join("a").exists(), "replaced as a whole");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, ["out"], "no staging or backup directory left behind");
    }
}
