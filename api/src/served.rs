//! A file as the serving endpoints use it: its catalog record and where its bytes come from
//! (its artifact keys and workflow key, or its upstream source), derived once per record. The
//! catalog cache keeps both, so a request for a cached file formats no key: a storm of GETs
//! for a file being prepared spent a quarter of its handler's time deriving them.

use htsprep_shared::artifacts::{ArtifactKey, KeyError};
use htsprep_shared::domain::{
    AccessUrl, ArtifactKind, FileRecord, Format, Processor, SidecarKind, workflow_key,
};

/// A catalog record with what its requests need of it.
#[derive(Debug)]
pub struct ServedFile {
    pub record: FileRecord,
    target: Result<Target, KeyError>,
}

impl ServedFile {
    pub fn new(record: FileRecord) -> Self {
        let target = Target::of(&record);
        Self { record, target }
    }

    /// Where the file's bytes come from (an error if its keys are invalid).
    pub fn target(&self) -> Result<&Target, KeyError> {
        self.target.as_ref().map_err(Clone::clone)
    }
}

/// Where a file's bytes come from.
#[derive(Debug)]
pub enum Target {
    /// Prepared artifacts in the artifact store.
    Artifacts(Keys),
    /// The source itself: passthrough formats, and sources that come with an upstream index.
    Upstream { index: Option<AccessUrl> },
}

/// A prepared file's keys: its artifacts' and its workflow's.
#[derive(Clone, Debug)]
pub struct Keys {
    pub data: ArtifactKey,
    pub index: ArtifactKey,
    pub workflow: String,
}

impl Keys {
    pub fn of(file: &FileRecord) -> Result<Self, KeyError> {
        Ok(Self {
            data: ArtifactKey::for_file(file, ArtifactKind::Data)?,
            index: ArtifactKey::for_file(file, ArtifactKind::Index)?,
            workflow: workflow_key(file),
        })
    }
}

impl Target {
    fn of(file: &FileRecord) -> Result<Self, KeyError> {
        if file.format.processor() == Processor::Passthrough {
            return Ok(Self::Upstream { index: None });
        }
        // A source that is already indexed upstream is served as it is, with its own index.
        let sidecar_kinds: &[SidecarKind] = match file.format {
            Format::Bam => &[SidecarKind::Bai, SidecarKind::Csi],
            Format::Vcf | Format::Gff | Format::Bed | Format::NarrowPeak | Format::BroadPeak => {
                &[SidecarKind::Tbi, SidecarKind::Csi]
            }
            _ => &[],
        };
        if let Some(url) = sidecar_kinds.iter().find_map(|k| file.sidecars.get(k)) {
            return Ok(Self::Upstream {
                index: Some(url.clone()),
            });
        }
        Keys::of(file).map(Self::Artifacts)
    }
}
