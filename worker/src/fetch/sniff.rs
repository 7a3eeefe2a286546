//! Compression detection by magic bytes.

use std::path::Path;

use tokio::io::AsyncReadExt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    /// Not compressed (or a format with its own binary layout, such as bigBed).
    None,
    /// Plain gzip: readable, but not random-access.
    Gzip,
    /// Blocked gzip (BGZF), as bgzip and samtools write it.
    Bgzf,
    Xz,
    Zstd,
    Bzip2,
    Zip,
}

impl Compression {
    /// The name of an encoding the pipelines cannot read, if this is one.
    pub fn unsupported(self) -> Option<&'static str> {
        match self {
            Compression::Xz => Some("xz"),
            Compression::Zstd => Some("zstd"),
            Compression::Bzip2 => Some("bzip2"),
            Compression::Zip => Some("zip"),
            Compression::None | Compression::Gzip | Compression::Bgzf => None,
        }
    }

    pub fn from_magic(head: &[u8]) -> Self {
        match head {
            [0x1f, 0x8b, 8, flags, _, _, _, _, _, _, _, _, b'B', b'C', ..] if flags & 4 != 0 => {
                Compression::Bgzf
            }
            [0x1f, 0x8b, ..] => Compression::Gzip,
            [0xfd, b'7', b'z', b'X', b'Z', 0, ..] => Compression::Xz,
            [0x28, 0xb5, 0x2f, 0xfd, ..] => Compression::Zstd,
            [b'B', b'Z', b'h', ..] => Compression::Bzip2,
            [b'P', b'K', 3, 4, ..] => Compression::Zip,
            _ => Compression::None,
        }
    }
}

/// Reads the first bytes of a file and names its compression.
pub async fn sniff_compression(path: &Path) -> std::io::Result<Compression> {
    let mut f = tokio::fs::File::open(path).await?;
    let mut head = [0u8; 16];
    let mut n = 0;
    while n < head.len() {
        let r = f.read(&mut head[n..]).await?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(Compression::from_magic(&head[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_magic_bytes() {
        let bgzf = [
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 6, 0, b'B', b'C', 2, 0,
        ];
        assert_eq!(Compression::from_magic(&bgzf), Compression::Bgzf);
        assert_eq!(
            Compression::from_magic(&[0x1f, 0x8b, 8, 0, 0, 0]),
            Compression::Gzip
        );
        assert_eq!(Compression::from_magic(b"\xfd7zXZ\0rest"), Compression::Xz);
        assert_eq!(
            Compression::from_magic(&[0x28, 0xb5, 0x2f, 0xfd, 1]),
            Compression::Zstd
        );
        assert_eq!(Compression::from_magic(b"BZh91AY"), Compression::Bzip2);
        assert_eq!(Compression::from_magic(b"PK\x03\x04"), Compression::Zip);
        assert_eq!(Compression::from_magic(b"chr1\t1\t2"), Compression::None);
        assert_eq!(Compression::from_magic(b""), Compression::None);
        assert_eq!(Compression::Xz.unsupported(), Some("xz"));
        assert_eq!(Compression::Gzip.unsupported(), None);
    }
}
