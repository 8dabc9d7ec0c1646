//! Inventories written for other tools, read into a common shape with where each setting came
//! from (file and line), so that `ops::import` can carry over what groundwork understands and
//! name everything else.

pub mod ansible;
