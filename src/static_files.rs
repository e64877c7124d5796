//! Static files (PROXY_STATIC_FILES): the player pages. Paths are resolved
//! segment by segment under a canonical root and checked again after
//! symlinks are followed, so nothing outside the folder is ever served.

use std::path::{Path, PathBuf};

/// Largest file served (pages and scripts, not media).
pub const MAX_FILE: u64 = 32 << 20;

#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not there (or not allowed: we do not say which).
    NotFound,
    /// The path itself is malformed (bad encoding, NUL, backslash).
    BadPath,
    TooLarge,
}

/// The file under `root` (already canonical) that `url_path` names.
pub fn resolve(root: &Path, url_path: &str) -> Result<PathBuf, Refused> {
    let decoded = srs_protocols::http::percent_decode(url_path).ok_or(Refused::BadPath)?;
    if decoded.contains('\\') || decoded.contains('\0') {
        return Err(Refused::BadPath);
    }
    let mut p = root.to_path_buf();
    for seg in decoded.split('/') {
        match seg {
            "" => continue,
            "." | ".." => return Err(Refused::NotFound),
            s if s.starts_with('.') => return Err(Refused::NotFound), // no dotfiles
            s => p.push(s),
        }
    }
    let mut real = p.canonicalize().map_err(|_| Refused::NotFound)?;
    if !real.starts_with(root) {
        return Err(Refused::NotFound);
    }
    if real.is_dir() {
        real = real.join("index.html").canonicalize().map_err(|_| Refused::NotFound)?;
        if !real.starts_with(root) {
            return Err(Refused::NotFound);
        }
    }
    let meta = real.metadata().map_err(|_| Refused::NotFound)?;
    if !meta.is_file() {
        return Err(Refused::NotFound);
    }
    if meta.len() > MAX_FILE {
        return Err(Refused::TooLarge);
    }
    Ok(real)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("srs-static-{}-{}", std::process::id(), fastrand::u64(..)));
        let root = base.join("www");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("index.html"), "home").unwrap();
        std::fs::write(root.join("sub/a.js"), "js").unwrap();
        std::fs::write(root.join(".hidden"), "no").unwrap();
        std::fs::write(base.join("secret.txt"), "secret").unwrap();
        std::os::unix::fs::symlink("/etc", root.join("etc")).unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link.txt")).unwrap();
        (root.canonicalize().unwrap(), base)
    }

    macro_rules! cases {
        ($($name:ident: $path:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let (root, base) = tree();
                let got = resolve(&root, $path).map(|p| p.strip_prefix(&root).unwrap().to_string_lossy().into_owned());
                std::fs::remove_dir_all(&base).ok();
                assert_eq!(got, $want);
            }
        )*};
    }

    cases! {
        root_is_index: "/" => Ok("index.html".to_string());
        a_file: "/sub/a.js" => Ok("sub/a.js".to_string());
        a_dir_without_index: "/sub/" => Err(Refused::NotFound);
        missing: "/nope.html" => Err(Refused::NotFound);
        dotdot: "/../secret.txt" => Err(Refused::NotFound);
        dotdot_inside: "/sub/../../secret.txt" => Err(Refused::NotFound);
        encoded_dotdot: "/%2e%2e/secret.txt" => Err(Refused::NotFound);
        encoded_upper: "/%2E%2E/secret.txt" => Err(Refused::NotFound);
        encoded_slash: "/sub%2f..%2f..%2fsecret.txt" => Err(Refused::NotFound);
        absolute_like: "//etc/passwd" => Err(Refused::NotFound);
        symlink_dir_out: "/etc/passwd" => Err(Refused::NotFound);
        symlink_file_out: "/link.txt" => Err(Refused::NotFound);
        backslash: "/..\\secret.txt" => Err(Refused::BadPath);
        nul: "/index.html%00.js" => Err(Refused::BadPath);
        bad_percent: "/%zz" => Err(Refused::BadPath);
        dotfile: "/.hidden" => Err(Refused::NotFound);
    }
}
