//! Finds the plugin libraries in the plugin directory and loads each one on its own, refusing
//! (with the reason) any file that is not a bonnie plugin of a compatible ABI version, whose
//! types' layout differs from this host's, or that was built with `panic = "abort"`.

use std::{
    collections::BTreeMap,
    fmt,
    path::{Path, PathBuf},
};

use abi_stable::library::{LibHeader, RootModule, lib_header_from_path};
use bonnie_plugin_api::{
    ABI_VERSION, BuildInfo, PluginInfo, handler::HandlerModRef, input::InputModRef, kind,
    output::OutputModRef, storage::StorageModRef,
};

/// The four kinds of plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Hands jobs to the host.
    Input,
    /// Processes notifications.
    Handler,
    /// Keeps records and the event log.
    Storage,
    /// Writes processed notifications elsewhere.
    Output,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Input => "input",
            Kind::Handler => "handler",
            Kind::Storage => "storage",
            Kind::Output => "output",
        })
    }
}

/// A loaded root module.
#[derive(Clone, Copy)]
pub enum Module {
    /// An input plugin.
    Input(InputModRef),
    /// A handler plugin.
    Handler(HandlerModRef),
    /// A storage plugin.
    Storage(StorageModRef),
    /// An output plugin.
    Output(OutputModRef),
}

/// What abi_stable's check of the layout of every type a plugin shares with the host found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayoutCheck {
    /// Every type matched (or only grew the way prefix types may).
    Passed,
    /// A type differs: the plugin was built against a changed plugin-api.
    Failed,
    /// Not checked: the file was refused before (not a plugin, another major version).
    NotChecked,
}

impl fmt::Display for LayoutCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LayoutCheck::Passed => "passed",
            LayoutCheck::Failed => "failed",
            LayoutCheck::NotChecked => "not checked",
        })
    }
}

/// A plugin library that loaded.
pub struct Plugin {
    /// Its file.
    pub file: PathBuf,
    /// What it says of itself.
    pub info: PluginInfo,
    /// The plugin-api version it was built against.
    pub api_version: String,
    /// Its root module.
    pub module: Module,
    /// How it was built; `None` for plugins built against plugin-api 1.0, which predates it.
    pub build: Option<BuildInfo>,
}

impl Plugin {
    /// The plugin's name.
    pub fn name(&self) -> &str {
        self.info.name.as_str()
    }

    /// The plugin's kind.
    pub fn kind(&self) -> Kind {
        match self.module {
            Module::Input(_) => Kind::Input,
            Module::Handler(_) => Kind::Handler,
            Module::Storage(_) => Kind::Storage,
            Module::Output(_) => Kind::Output,
        }
    }
}

/// What became of one file in the plugin directory.
pub enum Entry {
    /// Loaded.
    Loaded(Plugin),
    /// Listed in `[worker] disabled`; not loaded.
    Disabled {
        /// The file.
        file: PathBuf,
    },
    /// Could not be used.
    Refused {
        /// The file.
        file: PathBuf,
        /// The plugin's name, when it got far enough to say.
        name: Option<String>,
        /// Its kind, when known.
        kind: Option<Kind>,
        /// The plugin-api version it was built against, when known.
        api_version: Option<String>,
        /// What the layout check found.
        layout: LayoutCheck,
        /// Why, in one line an administrator can act on.
        reason: String,
    },
}

/// Why the plugin directory itself could not be read.
#[derive(Debug)]
pub struct DirError {
    /// The directory.
    pub dir: PathBuf,
    /// The I/O error.
    pub source: std::io::Error,
}

impl fmt::Display for DirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read the plugin directory {}: {}",
            self.dir.display(),
            self.source
        )
    }
}

impl std::error::Error for DirError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The `*.so` files of `dir`, sorted by name (symbolic links included, even dangling ones, so
/// that they are reported rather than silently missed).
pub fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, DirError> {
    let read = std::fs::read_dir(dir).map_err(|source| DirError {
        dir: dir.to_path_buf(),
        source,
    })?;
    let mut files: Vec<PathBuf> = read
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "so"))
        .collect();
    files.sort();
    Ok(files)
}

/// Loads every plugin file of `dir` except those `disabled` names (by file name or plugin
/// name). A plugin name seen twice is refused the second time.
pub fn load_dir(dir: &Path, disabled: &[String]) -> Result<Vec<Entry>, DirError> {
    crate::trust::check_dir(dir).map_err(|reason| DirError {
        dir: dir.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, reason),
    })?;
    let mut names: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut entries = Vec::new();
    for file in plugin_files(dir)? {
        let file_name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if disabled.contains(&file_name) {
            entries.push(Entry::Disabled { file });
            continue;
        }
        let entry = match load_file(&file) {
            Entry::Loaded(plugin) if disabled.iter().any(|d| d == plugin.name()) => {
                Entry::Disabled { file: plugin.file }
            }
            Entry::Loaded(plugin) => match names.get(plugin.name()) {
                Some(first) => Entry::Refused {
                    reason: format!(
                        "a plugin named {} was already loaded from {}",
                        plugin.name(),
                        first.display()
                    ),
                    name: Some(plugin.name().to_string()),
                    kind: Some(plugin.kind()),
                    api_version: Some(plugin.api_version),
                    layout: LayoutCheck::Passed,
                    file: plugin.file,
                },
                None => {
                    names.insert(plugin.name().to_string(), plugin.file.clone());
                    Entry::Loaded(plugin)
                }
            },
            other => other,
        };
        entries.push(entry);
    }
    Ok(entries)
}

/// Loads one plugin library.
pub fn load_file(file: &Path) -> Entry {
    let refused =
        |kind: Option<Kind>, api_version: Option<String>, reason: String| Entry::Refused {
            file: file.to_path_buf(),
            name: None,
            kind,
            api_version,
            layout: LayoutCheck::NotChecked,
            reason: one_line(&reason),
        };
    if let Err(reason) = crate::trust::check_file(file) {
        return refused(None, None, reason);
    }
    let header = match lib_header_from_path(file) {
        Ok(header) => header,
        Err(e) => return refused(None, None, describe_open_error(file, &e)),
    };
    let consts = header.root_mod_consts();
    let root_name = consts.name().as_str();
    let kind = match root_name {
        kind::INPUT => Kind::Input,
        kind::HANDLER => Kind::Handler,
        kind::STORAGE => Kind::Storage,
        kind::OUTPUT => Kind::Output,
        other => {
            return refused(
                None,
                None,
                format!("not a bonnie plugin: its abi_stable root module is {other:?}"),
            );
        }
    };
    let api_version = version_text(header);
    if let Err(reason) = check_major(&api_version) {
        return refused(Some(kind), Some(api_version), reason);
    }
    let module = match kind {
        Kind::Input => init::<InputModRef>(header, 0).map(Module::Input),
        Kind::Handler => init::<HandlerModRef>(header, 1).map(Module::Handler),
        Kind::Storage => init::<StorageModRef>(header, 2).map(Module::Storage),
        Kind::Output => init::<OutputModRef>(header, 3).map(Module::Output),
    };
    let module = match module {
        Ok(module) => module,
        Err(InitError::Layout(details)) => {
            return Entry::Refused {
                file: file.to_path_buf(),
                name: None,
                kind: Some(kind),
                reason: one_line(&layout_mismatch(&api_version, &details)),
                api_version: Some(api_version),
                layout: LayoutCheck::Failed,
            };
        }
        Err(InitError::Other(reason)) => return refused(Some(kind), Some(api_version), reason),
    };
    // A field after a root module's prefix reads as absent (`None`) in an older plugin.
    let (info, build) = match module {
        Module::Input(m) => (m.info()(), m.build()),
        Module::Handler(m) => (m.info()(), m.build()),
        Module::Storage(m) => (m.info()(), m.build()),
        Module::Output(m) => (m.info()(), m.build()),
    };
    if build.is_some_and(|b| !b.panic_unwinds) {
        return Entry::Refused {
            file: file.to_path_buf(),
            name: Some(info.name.as_str().to_string()),
            kind: Some(kind),
            api_version: Some(api_version),
            layout: LayoutCheck::Passed,
            reason: PANIC_ABORT.to_string(),
        };
    }
    Entry::Loaded(Plugin {
        file: file.to_path_buf(),
        info,
        api_version,
        module,
        build,
    })
}

/// Why a plugin built with `panic = "abort"` is refused.
pub const PANIC_ABORT: &str = "built with panic = \"abort\": a panic in it would end the whole \
     worker instead of failing one job; rebuild it with the default panic = \"unwind\" (remove \
     panic = \"abort\" from the [profile] of its Cargo.toml)";

enum InitError {
    /// abi_stable's layout check failed; its description of the difference.
    Layout(String),
    /// Anything else, as a reason.
    Other(String),
}

/// The root module, with abi_stable's checks of the version and of the layout of every type
/// the plugin shares with the host. A plugin built against an older minor version would fail
/// abi_stable's check wherever the ABI grew since (it refuses prefix types with fewer fields
/// than the host's), so its layout is checked against that version's frozen layout instead
/// (`bonnie_plugin_api::frozen`, entry `slot` of its kind).
fn init<M: RootModule>(header: &LibHeader, slot: usize) -> Result<M, InitError> {
    use abi_stable::library::LibraryError;
    let older = match (minor(&version_text(header)), minor(ABI_VERSION)) {
        (Some(theirs), Some(ours)) => theirs < ours,
        _ => false,
    };
    let module = if older {
        init_older::<M>(header, slot)?
    } else {
        header.init_root_module::<M>()
    };
    module.map_err(|e| match e {
        LibraryError::AbiInstability(details) => InitError::Layout(details.to_string()),
        other => InitError::Other(format!("incompatible plugin: {other}")),
    })
}

/// The root module of a plugin built against an older minor version, if its layout is that
/// version's exactly.
#[allow(unsafe_code)]
fn init_older<M: RootModule>(
    header: &LibHeader,
    slot: usize,
) -> Result<Result<M, abi_stable::library::LibraryError>, InitError> {
    use abi_stable::abi_stability::abi_checking::{
        CheckingGlobals, check_layout_compatibility_with_globals,
    };
    let theirs = minor(&version_text(header)).unwrap_or(0);
    let library = header.layout().ok_or_else(|| {
        InitError::Other("the plugin was built without abi_stable's layout information".into())
    })?;
    // The newest frozen version at or before the plugin's: the types of the minor versions in
    // between did not change.
    let frozen = bonnie_plugin_api::frozen::layouts()
        .into_iter()
        .rev()
        .find(|(m, _)| *m <= theirs)
        .map(|(_, layouts)| layouts[slot])
        .ok_or_else(|| InitError::Other(format!("no frozen layout of plugin-api 1.{theirs}")))?;
    // Checked apart from abi_stable's global record of prefix types, which must keep seeing
    // only today's types paired with plugins of today's version.
    let globals = CheckingGlobals::new();
    check_layout_compatibility_with_globals(frozen, library, &globals)
        .map_err(|e| InitError::Layout(e.to_string()))?;
    check_layout_compatibility_with_globals(frozen, M::LAYOUT, &globals).map_err(|e| {
        InitError::Other(format!(
            "this host's plugin-api {ABI_VERSION} does not extend plugin-api 1.{theirs}: {e}"
        ))
    })?;
    // SAFETY: the library's root module has the frozen layout of its version (checked just
    // above, by abi_stable's checker), and `M` extends that layout the only way prefix types
    // may: fields and methods added after the prefix, whose accessors read the library's own
    // field count at run time, so what it lacks reads as absent (or runs a method's default
    // body) instead of being read past its end. Every other type is the same in both.
    Ok(unsafe { header.init_root_module_with_unchecked_layout::<M>() })
}

/// Refuses a plugin whose types differ from the host's although the major versions agree: it
/// was built against a changed copy of plugin-api (a breaking change without a new major
/// version), so calling it would be undefined behaviour.
fn layout_mismatch(plugin_version: &str, details: &str) -> String {
    // abi_stable's report is long; its first lines say which type differs.
    let details: String = details.lines().take(12).collect::<Vec<_>>().join(" ");
    format!(
        "built against plugin-api {plugin_version}, whose types differ from this host's \
         plugin-api {ABI_VERSION} (the ABI layout check failed): the plugin was built against a \
         changed copy of plugin-api; rebuild it against plugin-api {ABI_VERSION}. Layout check: \
         {details}"
    )
}

fn version_text(header: &LibHeader) -> String {
    header.version_strings().version.as_str().to_string()
}

fn major(version: &str) -> Option<u64> {
    version.split('.').next()?.parse().ok()
}

fn minor(version: &str) -> Option<u64> {
    version.split('.').nth(1)?.parse().ok()
}

/// Refuses a plugin built against another major plugin-api version, naming both.
fn check_major(plugin_version: &str) -> Result<(), String> {
    match (major(plugin_version), major(ABI_VERSION)) {
        (Some(theirs), Some(ours)) if theirs == ours => Ok(()),
        (Some(_), Some(_)) => Err(format!(
            "built against plugin-api {plugin_version}, but this host has plugin-api {ABI_VERSION}; \
             the major versions differ, rebuild the plugin against plugin-api {ABI_VERSION}"
        )),
        _ => Err(format!("unreadable plugin-api version {plugin_version:?}")),
    }
}

fn describe_open_error(file: &Path, e: &abi_stable::library::LibraryError) -> String {
    use abi_stable::library::LibraryError;
    match e {
        LibraryError::GetSymbolError { .. } => {
            "not a bonnie plugin: the library exports no abi_stable root module".to_string()
        }
        LibraryError::OpenError { .. } if !file.exists() => {
            "cannot open: the file does not exist (a dangling symbolic link?)".to_string()
        }
        other => format!("cannot open: {other}"),
    }
}

/// Errors from dlopen and abi_stable span several lines; the listing wants one.
fn one_line(text: &str) -> String {
    let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
    const MAX: usize = 400;
    if joined.len() <= MAX {
        return joined;
    }
    let mut end = MAX;
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &joined[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_major_version_is_refused_naming_both_versions() {
        let reason = check_major("2.0.0").unwrap_err();
        assert!(reason.contains("2.0.0"), "{reason}");
        assert!(reason.contains(ABI_VERSION), "{reason}");
        assert!(check_major(ABI_VERSION).is_ok());
    }

    #[test]
    fn a_garbage_file_is_refused_with_the_loader_error() {
        let dir = std::env::temp_dir().join(format!("bonnie-loader-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("garbage.so");
        std::fs::write(&file, b"this is not an ELF file").unwrap();
        match load_file(&file) {
            Entry::Refused { reason, .. } => assert!(reason.starts_with("cannot open"), "{reason}"),
            _ => panic!("a garbage file must be refused"),
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn long_errors_become_one_bounded_line() {
        let text = "a\nb   c\n".repeat(300);
        let line = one_line(&text);
        assert!(!line.contains('\n'));
        assert!(line.len() <= 400 + '…'.len_utf8());
    }
}
