//! The pieces `groundwork bundle build` (`ops::bundle_build`) makes a bundle from: the official
//! release layouts and checksum files, verified downloads, the etcd archive and the images.

pub mod download;
pub mod etcd;
pub mod images;
pub mod release;
