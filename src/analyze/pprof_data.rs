//! Go pprof profiles (heap, CPU): decoding, top lists and flame graphs.
//!
//! Profiles are stored in the bundle exactly as containerd served them
//! (gzipped profile.proto) so `go tool pprof` opens them; this module reads
//! them with pprof-rs's generated protobuf types and computes what a reader
//! wants without a Go toolchain: totals, the top functions by flat and
//! cumulative value (the numbers `go tool pprof -top` prints, at function
//! granularity), and a flame graph SVG drawn by inferno from folded stacks.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;

use pprof::protos::{Message, Profile};
use serde::{Deserialize, Serialize};

/// A profile that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot gunzip the profile")]
    Gunzip(#[source] std::io::Error),
    #[error("the profile is not a valid profile.proto")]
    Decode(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("the profile has no sample type {0}")]
    NoSampleType(String),
    #[error("cannot draw the flame graph")]
    FlameGraph(#[source] std::io::Error),
}

/// Decodes a profile.proto, gzipped (as Go serves it) or not.
pub fn decode(data: &[u8]) -> Result<Profile, ProfileError> {
    let mut raw = Vec::new();
    let bytes = if data.starts_with(&[0x1f, 0x8b]) {
        flate2::read::MultiGzDecoder::new(data)
            .read_to_end(&mut raw)
            .map_err(ProfileError::Gunzip)?;
        &raw[..]
    } else {
        data
    };
    Profile::decode(bytes).map_err(|err| ProfileError::Decode(Box::new(err)))
}

/// One function's share of a profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopEntry {
    pub function: String,
    /// The value of samples where it is the innermost call.
    pub flat: i64,
    /// The value of samples where it is anywhere on the stack.
    pub cum: i64,
}

/// The functions of a profile ranked by one sample type.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Top {
    /// The sample type ranked by, e.g. `inuse_space` or `cpu`.
    pub sample_type: String,
    /// Its unit, e.g. `bytes` or `nanoseconds`.
    pub unit: String,
    /// The sum over all samples.
    pub total: i64,
    /// How many samples the profile has.
    pub samples: usize,
    /// The profile's duration, for CPU profiles.
    pub duration_nanos: i64,
    /// Largest flat value first; ties by cumulative value, then name.
    pub by_flat: Vec<TopEntry>,
    /// Largest cumulative value first; ties by name.
    pub by_cum: Vec<TopEntry>,
}

/// Decoded profile with its strings resolved, ready for ranking.
pub struct Stacks {
    sample_types: Vec<(String, String)>,
    default_type: Option<String>,
    duration_nanos: i64,
    /// Per sample: its values and its functions, innermost first.
    samples: Vec<(Vec<i64>, Vec<String>)>,
}

impl Stacks {
    /// Resolves the functions of every sample of `profile`.
    pub fn new(profile: &Profile) -> Stacks {
        let string = |at: i64| {
            profile
                .string_table
                .get(at.max(0) as usize)
                .cloned()
                .unwrap_or_default()
        };
        let functions: HashMap<u64, String> = profile
            .function
            .iter()
            .map(|f| (f.id, string(f.name)))
            .collect();
        // A location holds its inlined calls innermost first.
        let locations: HashMap<u64, Vec<String>> = profile
            .location
            .iter()
            .map(|loc| {
                let names = loc
                    .line
                    .iter()
                    .map(|line| {
                        functions
                            .get(&line.function_id)
                            .cloned()
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>();
                let names = if names.is_empty() {
                    vec![format!("0x{:x}", loc.address)]
                } else {
                    names
                };
                (loc.id, names)
            })
            .collect();
        let samples = profile
            .sample
            .iter()
            .map(|sample| {
                let frames = sample
                    .location_id
                    .iter()
                    .flat_map(|id| locations.get(id).cloned().unwrap_or_default())
                    .collect();
                (sample.value.clone(), frames)
            })
            .collect();
        let default = string(profile.default_sample_type);
        Stacks {
            sample_types: profile
                .sample_type
                .iter()
                .map(|t| (string(t.ty), string(t.unit)))
                .collect(),
            default_type: (!default.is_empty()).then_some(default),
            duration_nanos: profile.duration_nanos,
            samples,
        }
    }

    /// The sample type `go tool pprof` shows by default: the profile's
    /// declared default, else the last one.
    pub fn default_sample_type(&self) -> Option<String> {
        self.default_type
            .clone()
            .or_else(|| self.sample_types.last().map(|(ty, _)| ty.clone()))
    }

    fn index(&self, sample_type: &str) -> Result<usize, ProfileError> {
        self.sample_types
            .iter()
            .position(|(ty, _)| ty == sample_type)
            .ok_or_else(|| ProfileError::NoSampleType(sample_type.to_string()))
    }

    /// Ranks functions by `sample_type`, keeping the `limit` largest.
    pub fn top(&self, sample_type: &str, limit: usize) -> Result<Top, ProfileError> {
        let at = self.index(sample_type)?;
        let mut flat: HashMap<&str, i64> = HashMap::new();
        let mut cum: HashMap<&str, i64> = HashMap::new();
        let mut total = 0i64;
        for (values, frames) in &self.samples {
            let value = values.get(at).copied().unwrap_or(0);
            total = total.saturating_add(value);
            if let Some(leaf) = frames.first() {
                *flat.entry(leaf).or_default() += value;
            }
            // A recursive function counts once per sample.
            let mut seen = HashSet::new();
            for frame in frames {
                if seen.insert(frame.as_str()) {
                    *cum.entry(frame).or_default() += value;
                }
            }
        }
        // Functions only on stacks of zero value (freed memory in a heap
        // profile's in-use view) are left out, as pprof does.
        let entries: Vec<TopEntry> = cum
            .iter()
            .filter(|(_, cum)| **cum != 0)
            .map(|(name, cum)| TopEntry {
                function: name.to_string(),
                flat: flat.get(name).copied().unwrap_or(0),
                cum: *cum,
            })
            .collect();
        let mut by_flat = entries.clone();
        by_flat.sort_by(|a, b| {
            (b.flat.abs(), b.cum.abs(), &a.function).cmp(&(a.flat.abs(), a.cum.abs(), &b.function))
        });
        by_flat.truncate(limit);
        let mut by_cum = entries;
        by_cum.sort_by(|a, b| (b.cum.abs(), &a.function).cmp(&(a.cum.abs(), &b.function)));
        by_cum.truncate(limit);
        Ok(Top {
            sample_type: sample_type.to_string(),
            unit: self.sample_types[at].1.clone(),
            total,
            samples: self.samples.len(),
            duration_nanos: self.duration_nanos,
            by_flat,
            by_cum,
        })
    }

    /// Folded stacks (`outer;...;inner value`) for `sample_type`, one line
    /// per distinct stack, samples of zero left out.
    pub fn folded(&self, sample_type: &str) -> Result<Vec<String>, ProfileError> {
        let at = self.index(sample_type)?;
        let mut stacks: BTreeMap<String, i64> = BTreeMap::new();
        for (values, frames) in &self.samples {
            let value = values.get(at).copied().unwrap_or(0);
            if value <= 0 || frames.is_empty() {
                continue;
            }
            let names: Vec<String> = frames.iter().rev().map(|f| f.replace(';', ":")).collect();
            *stacks.entry(names.join(";")).or_default() += value;
        }
        Ok(stacks
            .into_iter()
            .map(|(stack, value)| format!("{stack} {value}"))
            .collect())
    }

    /// Draws a flame graph SVG of `sample_type`; an empty profile yields an
    /// SVG that says there is nothing to show.
    pub fn flame_graph(&self, sample_type: &str, title: &str) -> Result<Vec<u8>, ProfileError> {
        let lines = self.folded(sample_type)?;
        if lines.is_empty() {
            return Ok(empty_svg(title).into_bytes());
        }
        let unit = self.sample_types[self.index(sample_type)?].1.clone();
        let mut options = inferno::flamegraph::Options::default();
        options.title = title.to_string();
        options.count_name = unit;
        let mut svg = Vec::new();
        inferno::flamegraph::from_lines(&mut options, lines.iter().map(String::as_str), &mut svg)
            .map_err(ProfileError::FlameGraph)?;
        Ok(svg)
    }
}

/// A small SVG that says the profile has nothing to draw; inferno refuses
/// empty input, and an idle daemon's CPU profile has no samples.
fn empty_svg(title: &str) -> String {
    let title = title
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    format!(
        "<?xml version=\"1.0\" standalone=\"no\"?>\n\
         <svg version=\"1.1\" width=\"600\" height=\"60\" \
         xmlns=\"http://www.w3.org/2000/svg\">\n\
         <text x=\"10\" y=\"25\" font-family=\"Verdana\" font-size=\"14\">{title}</text>\n\
         <text x=\"10\" y=\"48\" font-family=\"Verdana\" font-size=\"12\">\
         no samples in this profile</text>\n</svg>\n"
    )
}

#[cfg(test)]
mod tests {
    use pprof::protos::{Function, Line, Location, Sample, ValueType};

    use super::*;

    /// main → work → leaf (leaf inlined into work), and main → leaf.
    fn profile() -> Profile {
        let strings = ["", "cpu", "nanoseconds", "main", "work", "leaf"];
        let function = |id: u64, name: i64| Function {
            id,
            name,
            ..Default::default()
        };
        let line = |function_id| Line {
            function_id,
            line: 1,
        };
        Profile {
            sample_type: vec![ValueType { ty: 1, unit: 2 }],
            string_table: strings.iter().map(|s| s.to_string()).collect(),
            function: vec![function(1, 3), function(2, 4), function(3, 5)],
            location: vec![
                Location {
                    id: 1,
                    line: vec![line(1)],
                    ..Default::default()
                },
                Location {
                    id: 2,
                    line: vec![line(3), line(2)],
                    ..Default::default()
                },
                Location {
                    id: 3,
                    line: vec![line(3)],
                    ..Default::default()
                },
            ],
            sample: vec![
                Sample {
                    location_id: vec![2, 1],
                    value: vec![30],
                    label: vec![],
                },
                Sample {
                    location_id: vec![3, 1],
                    value: vec![10],
                    label: vec![],
                },
            ],
            ..Default::default()
        }
    }

    #[test]
    fn ranks_flat_and_cumulative_with_inlined_frames() {
        let stacks = Stacks::new(&profile());
        let top = stacks.top("cpu", 10).unwrap();
        assert_eq!(top.total, 40);
        assert_eq!(top.by_flat[0].function, "leaf");
        assert_eq!(top.by_flat[0].flat, 40);
        // main and leaf tie at the whole total; names break the tie.
        assert_eq!(top.by_cum[0].function, "leaf");
        assert_eq!(
            (top.by_cum[1].function.as_str(), top.by_cum[1].cum),
            ("main", 40)
        );
        let work = top.by_cum.iter().find(|e| e.function == "work").unwrap();
        assert_eq!((work.flat, work.cum), (0, 30));
        assert_eq!(
            stacks.folded("cpu").unwrap(),
            vec!["main;leaf 10", "main;work;leaf 30"]
        );
    }

    #[test]
    fn round_trips_through_gzip_and_draws_svg() {
        let mut raw = Vec::new();
        profile().encode(&mut raw).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        let decoded = decode(&gz.finish().unwrap()).unwrap();
        let svg = Stacks::new(&decoded).flame_graph("cpu", "CPU").unwrap();
        assert!(String::from_utf8_lossy(&svg).contains("<svg"));
        assert!(decode(b"\x1f\x8bnot gzip").is_err());
        assert!(Stacks::new(&decoded).top("inuse_space", 5).is_err());
        let empty = Stacks::new(&Profile {
            sample_type: decoded.sample_type.clone(),
            string_table: decoded.string_table.clone(),
            ..Default::default()
        });
        let svg = String::from_utf8(empty.flame_graph("cpu", "CPU <idle>").unwrap()).unwrap();
        assert!(svg.contains("no samples") && svg.contains("&lt;idle&gt;"));
    }
}
