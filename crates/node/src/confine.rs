//! Keeps the sites server inside the `--sites` folder: a path with a
//! segment starting with `.` (dotfiles, `.git`, `..`) and a path that
//! resolves, through symlinks, outside the folder are answered 404 as if
//! they did not exist. Symlinks that stay inside the folder are served.

use std::path::{Path, PathBuf};

use percent_encoding::percent_decode_str;

/// The sites folder, resolved once.
#[derive(Debug)]
pub struct Confined {
    root: PathBuf,
    /// `root` with its symlinks resolved (itself when it cannot be).
    real_root: PathBuf,
}

impl Confined {
    pub fn new(root: &Path) -> Confined {
        Confined {
            root: root.to_path_buf(),
            real_root: std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()),
        }
    }

    /// Whether the URL path `path` may be served: no dot segment, no
    /// backslash, and (when it exists) it resolves inside the folder. A
    /// folder path (ending in `/`) is checked with its `index.html`.
    pub async fn allows(&self, path: &str) -> bool {
        let Ok(decoded) = percent_decode_str(path).decode_utf8() else {
            return false;
        };
        let mut file = self.root.clone();
        for segment in decoded.split('/').filter(|s| !s.is_empty()) {
            if segment.starts_with('.') || segment.contains('\\') || segment.contains('\0') {
                return false;
            }
            file.push(segment);
        }
        if decoded.ends_with('/') {
            file.push("index.html");
        }
        match tokio::fs::canonicalize(&file).await {
            Ok(real) => real.starts_with(&self.real_root),
            // Missing: the file server answers 404 itself.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink is refused too.
                tokio::fs::symlink_metadata(&file).await.is_err()
            }
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dotfiles_and_escaping_symlinks_are_refused() {
        let base = std::env::temp_dir().join(format!("r2-node-confine-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (root, outside) = (base.join("sites"), base.join("outside"));
        std::fs::create_dir_all(root.join("app")).expect("dirs");
        std::fs::create_dir_all(&outside).expect("dirs");
        std::fs::write(root.join("app/index.html"), "ok").expect("write");
        std::fs::write(root.join("app/.env"), "secret").expect("write");
        std::fs::write(outside.join("secret.txt"), "secret").expect("write");
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(&outside, root.join("app/out")).expect("symlink");
            std::os::unix::fs::symlink(root.join("app/index.html"), root.join("app/in.html"))
                .expect("symlink");
        }
        let confined = Confined::new(&root);
        assert!(confined.allows("/app/").await);
        assert!(confined.allows("/app/index.html").await);
        assert!(
            confined.allows("/app/missing.js").await,
            "404 is the file server's"
        );
        assert!(!confined.allows("/app/.env").await);
        assert!(!confined.allows("/app/%2eenv").await);
        assert!(!confined.allows("/app/../outside/secret.txt").await);
        #[cfg(unix)]
        {
            assert!(!confined.allows("/app/out/secret.txt").await);
            assert!(
                confined.allows("/app/in.html").await,
                "a symlink inside is fine"
            );
        }
        std::fs::remove_dir_all(&base).ok();
    }
}
