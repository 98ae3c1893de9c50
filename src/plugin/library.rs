//! Opening a plugin library and checking its header before anything else is called.

use std::mem::size_of;
use std::path::{Path, PathBuf};

use lora_grpo_plugin::abi::{
    self, AbiProbe, DatasetVTable, PluginHeader, RewardVTable, StrRef, ABI_MAJOR, ABI_MINOR,
    ENTRY_SYMBOL, PROBE_SYMBOL,
};

use super::PluginKind;
use crate::error::PluginError;

/// Names of the vtable slots, in order; every slot is a function pointer.
const REWARD_SLOTS: [&str; 5] = ["create", "score", "destroy", "free_scores", "free_bytes"];
const DATASET_SLOTS: [&str; 5] = ["open", "size_hint", "next", "close", "free_bytes"];
const _: () = assert!(size_of::<RewardVTable>() == REWARD_SLOTS.len() * size_of::<usize>());
const _: () = assert!(size_of::<DatasetVTable>() == DATASET_SLOTS.len() * size_of::<usize>());

/// What a plugin's header says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The library file.
    pub path: PathBuf,
    pub kind: PluginKind,
    /// The name recipes use.
    pub name: String,
    /// The plugin's own version.
    pub version: String,
    /// The SDK (or C header) version it was built with.
    pub sdk_version: String,
    pub description: String,
    /// ABI (major, minor) it was built for.
    pub abi: (u32, u32),
}

/// A checked plugin. The library is never unloaded, so its vtable lives for `'static`.
#[derive(Debug, Clone)]
pub(super) struct Loaded {
    pub info: PluginInfo,
    pub vtable: VTable,
}

impl Loaded {
    /// The error for naming this plugin where a `expected` plugin is needed.
    pub fn wrong_kind(&self, expected: PluginKind) -> PluginError {
        PluginError::WrongKind {
            name: self.info.name.clone(),
            path: self.info.path.clone(),
            expected,
            found: self.info.kind,
        }
    }

    /// The header and reward vtable, or `WrongKind`.
    pub fn into_reward(self) -> Result<(PluginInfo, &'static RewardVTable), PluginError> {
        match self.vtable {
            VTable::Reward(vtable) => Ok((self.info, vtable)),
            VTable::Dataset(_) => Err(self.wrong_kind(PluginKind::Reward)),
        }
    }

    /// The header and dataset vtable, or `WrongKind`.
    pub fn into_dataset(self) -> Result<(PluginInfo, &'static DatasetVTable), PluginError> {
        match self.vtable {
            VTable::Dataset(vtable) => Ok((self.info, vtable)),
            VTable::Reward(_) => Err(self.wrong_kind(PluginKind::Dataset)),
        }
    }
}

/// The kind's function table.
#[derive(Clone, Copy)]
pub(super) enum VTable {
    Reward(&'static RewardVTable),
    Dataset(&'static DatasetVTable),
}

impl std::fmt::Debug for VTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VTable::Reward(_) => "RewardVTable",
            VTable::Dataset(_) => "DatasetVTable",
        })
    }
}

/// Loads `path` and checks its header: ABI major, struct sizes, kind, strings and that
/// no vtable slot is null.
pub(super) fn open(path: &Path) -> Result<Loaded, PluginError> {
    if !path.is_file() {
        return Err(PluginError::FileMissing {
            path: path.to_path_buf(),
        });
    }
    // SAFETY: loading runs the library's initializers; plugin directories are trusted
    // like any other code the user runs. The library is leaked: never unloaded.
    let library = unsafe { libloading::Library::new(path) }.map_err(|e| PluginError::Load {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let library: &'static libloading::Library = Box::leak(Box::new(library));
    let bad = |problem: String| PluginError::BadHeader {
        path: path.to_path_buf(),
        problem,
    };

    type Entry = unsafe extern "C" fn() -> *const PluginHeader;
    // SAFETY: the symbol's type is fixed by the ABI.
    let entry = match unsafe { library.get::<Entry>(ENTRY_SYMBOL.as_bytes()) } {
        Ok(entry) => *entry,
        Err(_) => return Err(missing_entry(library, path)),
    };
    // SAFETY: the entry function takes nothing and returns a static header.
    let header = unsafe { entry() };
    if header.is_null() {
        return Err(bad(format!("`{ENTRY_SYMBOL}` returned null")));
    }
    // The leading fields are the same in every header layout; read them before trusting
    // the rest of the struct.
    // SAFETY: non-null, and every ABI starts the header with these three u32 fields.
    let (major, minor, header_size) = unsafe {
        let words = header.cast::<u32>();
        (words.read(), words.add(1).read(), words.add(2).read())
    };
    if major != ABI_MAJOR {
        return Err(mismatch(path, (major, minor), probe_sdk(probe(library))));
    }
    if (header_size as usize) < size_of::<PluginHeader>() {
        return Err(bad(format!(
            "header is {header_size} bytes, ABI {ABI_MAJOR}.{ABI_MINOR} needs at least {}",
            size_of::<PluginHeader>()
        )));
    }
    // SAFETY: the header is at least as large as ours and lives as long as the library.
    let header: &'static PluginHeader = unsafe { &*header };
    let text = |s: StrRef, field: &str| {
        if s.ptr.is_null() && s.len != 0 {
            return Err(bad(format!("`{field}` is null with length {}", s.len)));
        }
        // SAFETY: header strings point at static data of the library.
        let bytes = unsafe { s.as_bytes() };
        String::from_utf8(bytes.to_vec()).map_err(|_| bad(format!("`{field}` is not UTF-8")))
    };
    let name = text(header.name, "name")?;
    if name.trim().is_empty() {
        return Err(bad("`name` is empty".into()));
    }
    let (kind, slots) = match header.kind {
        abi::kind::REWARD => (PluginKind::Reward, &REWARD_SLOTS),
        abi::kind::DATASET => (PluginKind::Dataset, &DATASET_SLOTS),
        other => return Err(bad(format!("unknown plugin kind {other}"))),
    };
    let needed = slots.len() * size_of::<usize>();
    if (header.vtable_size as usize) < needed {
        return Err(bad(format!(
            "{kind} vtable is {} bytes, ABI {ABI_MAJOR}.{ABI_MINOR} needs at least {needed}",
            header.vtable_size
        )));
    }
    if header.vtable.is_null() {
        return Err(bad("vtable pointer is null".into()));
    }
    // A C plugin may leave a slot null, which Rust function pointers cannot hold: look
    // at the raw words first.
    // SAFETY: the vtable is at least `needed` bytes (checked above) and static.
    let words = unsafe { std::slice::from_raw_parts(header.vtable.cast::<usize>(), slots.len()) };
    if let Some(i) = words.iter().position(|&w| w == 0) {
        return Err(bad(format!(
            "{kind} vtable function `{}` is null",
            slots[i]
        )));
    }
    let info = PluginInfo {
        path: path.to_path_buf(),
        kind,
        name,
        version: text(header.version, "version")?,
        sdk_version: text(header.sdk_version, "sdk_version")?,
        description: text(header.description, "description")?,
        abi: (major, minor),
    };
    // SAFETY: size and non-null slots checked above; the kind says which table it is.
    let vtable = unsafe {
        match kind {
            PluginKind::Reward => VTable::Reward(&*header.vtable.cast::<RewardVTable>()),
            PluginKind::Dataset => VTable::Dataset(&*header.vtable.cast::<DatasetVTable>()),
        }
    };
    Ok(Loaded { info, vtable })
}

/// The version probe every ABI major exports, if the library has one.
fn probe(library: &'static libloading::Library) -> Option<&'static AbiProbe> {
    type Probe = unsafe extern "C" fn() -> *const AbiProbe;
    // SAFETY: the probe's type is the same in every ABI major.
    let probe = unsafe { library.get::<Probe>(PROBE_SYMBOL.as_bytes()) }.ok()?;
    // SAFETY: the probe takes nothing and returns a static struct (or null).
    unsafe { probe().as_ref() }
}

/// The SDK version a probe reports.
fn probe_sdk(probe: Option<&'static AbiProbe>) -> String {
    // SAFETY: the probe's string points at static data of the library.
    probe.map_or("unknown".into(), |p| {
        String::from_utf8_lossy(unsafe { p.sdk_version.as_bytes() }).into_owned()
    })
}

/// No v1 entry: an ABI mismatch when the version probe says so, else not a plugin.
fn missing_entry(library: &'static libloading::Library, path: &Path) -> PluginError {
    match probe(library) {
        Some(p) if p.abi_major != ABI_MAJOR => {
            mismatch(path, (p.abi_major, p.abi_minor), probe_sdk(Some(p)))
        }
        _ => PluginError::NotAPlugin {
            path: path.to_path_buf(),
            symbol: ENTRY_SYMBOL,
        },
    }
}

fn mismatch(path: &Path, (major, minor): (u32, u32), plugin_sdk: String) -> PluginError {
    PluginError::AbiMismatch {
        path: path.to_path_buf(),
        host_abi: format!("{ABI_MAJOR}.{ABI_MINOR}"),
        host_sdk: lora_grpo_plugin::SDK_VERSION.to_owned(),
        plugin_abi: format!("{major}.{minor}"),
        plugin_sdk,
    }
}
