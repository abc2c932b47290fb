//! The streaming template miner of one pool: a fixed-depth parse tree in the
//! manner of Drain (He et al., ICWS 2017), over the masked tokens of
//! [`super::mask`].
//!
//! A line is routed by its token count and its first tokens to a leaf, and
//! joins the leaf's most similar pattern when enough positions agree;
//! otherwise it founds a new pattern. Joining generalises the template: the
//! positions that differ become wildcards. The id of a pattern never changes:
//! it is the hash of the line that founded it, so a line mined twice (a queue
//! redelivery after a crash, before or after the miner state was saved) gets
//! the same id. When a template generalises into another one of its leaf, the
//! younger pattern is merged into the older: it keeps its id and its records,
//! and `merged_into` says where it went.
//!
//! Memory is bounded: a template has at most [`super::mask::MAX_TOKENS`]
//! tokens, a tree node at most `max_children` children, and a miner at most
//! `max_patterns` live patterns. At the cap no pattern is founded: a line
//! joins the closest pattern of its leaf whatever the similarity, or, in an
//! empty leaf, the pool's catch-all pattern whose template is one wildcard.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::mask::{masked_tokens, WILDCARD};
use crate::stable_hash::Fnv1a;

/// The identity of a pattern within its pool: 16 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct PatternId(pub u64);

impl fmt::Display for PatternId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:016x}", self.0)
    }
}

impl From<PatternId> for String {
    fn from(id: PatternId) -> String {
        id.to_string()
    }
}

impl TryFrom<String> for PatternId {
    type Error = PatternIdError;
    fn try_from(text: String) -> Result<PatternId, PatternIdError> {
        text.parse()
    }
}

impl std::str::FromStr for PatternId {
    type Err = PatternIdError;
    fn from_str(text: &str) -> Result<PatternId, PatternIdError> {
        if text.len() != 16 {
            return Err(PatternIdError(text.to_owned()));
        }
        u64::from_str_radix(text, 16)
            .map(PatternId)
            .map_err(|_| PatternIdError(text.to_owned()))
    }
}

/// A pattern id that is not 16 hex digits.
#[derive(Debug, Clone, thiserror::Error)]
#[error("pattern id `{0}` is not 16 hex digits")]
pub struct PatternIdError(String);

/// Tuning of the miner; one configuration serves every kind of log.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MinerConfig {
    /// Tokens that route a line in the tree, after its token count.
    pub prefix_tokens: usize,
    /// The share of agreeing positions at which a line joins a pattern.
    pub similarity: f64,
    /// Children per tree node before further tokens share the wildcard child.
    pub max_children: usize,
    /// Live patterns per pool (see the module doc for what happens at the cap).
    pub max_patterns: usize,
}

impl Default for MinerConfig {
    fn default() -> MinerConfig {
        MinerConfig {
            prefix_tokens: 2,
            similarity: 0.7,
            max_children: 100,
            max_patterns: 5_000,
        }
    }
}

/// One pattern of a pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pattern {
    /// Its stable id.
    pub id: PatternId,
    /// Its template tokens; variables are [`WILDCARD`] (or `key=<*>`).
    pub tokens: Vec<String>,
    /// Records assigned to it since it was founded (merges add theirs).
    pub count: u64,
    /// The earliest record time seen, in ms since the epoch.
    pub first_seen_ms: i64,
    /// The latest record time seen, in ms since the epoch.
    pub last_seen_ms: i64,
    /// The pattern this one was merged into, if any.
    pub merged_into: Option<PatternId>,
}

impl Pattern {
    /// The template as text, variable positions written `<*>`.
    pub fn template(&self) -> String {
        self.tokens.join(" ")
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Node {
    children: BTreeMap<String, u32>,
    patterns: Vec<u32>,
}

/// The miner state of one pool; serialisable as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatternMiner {
    config: MinerConfig,
    nodes: Vec<Node>,
    roots: BTreeMap<usize, u32>,
    patterns: Vec<Pattern>,
    num_live: usize,
    #[serde(skip)]
    by_id: HashMap<PatternId, u32>,
}

/// Distinct values a `key=word` position may take, each its own pattern,
/// before it becomes a variable.
pub const MAX_NAMED_VALUES: usize = 4;

/// The id of the catch-all pattern that takes lines once a pool is at its cap.
pub fn overflow_pattern_id() -> PatternId {
    PatternId(founding_hash(&[WILDCARD.to_owned()], 0))
}

impl PatternMiner {
    /// An empty miner.
    pub fn new(config: MinerConfig) -> PatternMiner {
        PatternMiner {
            config,
            nodes: Vec::new(),
            roots: BTreeMap::new(),
            patterns: Vec::new(),
            num_live: 0,
            by_id: HashMap::new(),
        }
    }

    /// Rebuilds the id index after deserialising.
    pub fn restore_index(&mut self) {
        self.by_id = self
            .patterns
            .iter()
            .enumerate()
            .map(|(slot, pattern)| (pattern.id, slot as u32))
            .collect();
    }

    /// Every pattern ever founded, merged ones included.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// The pattern with `id`.
    pub fn pattern(&self, id: PatternId) -> Option<&Pattern> {
        self.by_id
            .get(&id)
            .map(|slot| &self.patterns[*slot as usize])
    }

    /// Patterns not merged into another (the catch-all pattern aside).
    pub fn num_live_patterns(&self) -> usize {
        self.num_live
    }

    /// Assigns `line`, seen at `timestamp_ms`, to a pattern and returns its id.
    pub fn assign(&mut self, line: &str, timestamp_ms: i64) -> PatternId {
        let tokens = masked_tokens(line);
        let leaf = self.route(&tokens);
        let slot = match self.best_match(leaf, &tokens) {
            Some((slot, similarity))
                if similarity >= self.config.similarity
                    || self.num_live >= self.config.max_patterns =>
            {
                self.generalise(leaf, slot, &tokens);
                slot
            }
            _ if self.num_live >= self.config.max_patterns => self.overflow_slot(),
            _ => {
                let slot = self.found(leaf, tokens);
                self.widen_named_value(leaf, slot)
            }
        };
        let pattern = &mut self.patterns[slot as usize];
        pattern.count += 1;
        pattern.first_seen_ms = pattern.first_seen_ms.min(timestamp_ms);
        pattern.last_seen_ms = pattern.last_seen_ms.max(timestamp_ms);
        pattern.id
    }

    /// Follows (and grows) the tree to the leaf of `tokens`.
    fn route(&mut self, tokens: &[String]) -> u32 {
        let root = match self.roots.get(&tokens.len()) {
            Some(root) => *root,
            None => {
                let root = self.new_node();
                self.roots.insert(tokens.len(), root);
                root
            }
        };
        let mut node = root;
        for token in tokens.iter().take(self.config.prefix_tokens) {
            let key = if token.contains(WILDCARD) {
                WILDCARD
            } else {
                token.as_str()
            };
            let children = &self.nodes[node as usize].children;
            node = match children.get(key) {
                Some(child) => *child,
                None if children.len() + 1 < self.config.max_children => self.new_child(node, key),
                None => match children.get(WILDCARD) {
                    Some(child) => *child,
                    None => self.new_child(node, WILDCARD),
                },
            };
        }
        node
    }

    fn new_node(&mut self) -> u32 {
        self.nodes.push(Node::default());
        (self.nodes.len() - 1) as u32
    }

    fn new_child(&mut self, parent: u32, key: &str) -> u32 {
        let child = self.new_node();
        self.nodes[parent as usize]
            .children
            .insert(key.to_owned(), child);
        child
    }

    /// The most similar live pattern of `leaf` and its similarity.
    fn best_match(&self, leaf: u32, tokens: &[String]) -> Option<(u32, f64)> {
        let mut best: Option<(u32, f64, usize)> = None;
        for slot in &self.nodes[leaf as usize].patterns {
            let pattern = &self.patterns[*slot as usize];
            let comparison = compare(&pattern.tokens, tokens);
            let (similarity, wildcards) = (comparison.joinable_similarity(), comparison.wildcards);
            let better = match best {
                None => true,
                Some((_, best_similarity, best_wildcards)) => {
                    similarity > best_similarity
                        || (similarity == best_similarity && wildcards > best_wildcards)
                }
            };
            if better {
                best = Some((*slot, similarity, wildcards));
            }
        }
        best.map(|(slot, similarity, _)| (slot, similarity))
    }

    /// Widens the template of `slot` to cover `tokens`, merging it with any
    /// pattern of the leaf whose template it becomes.
    fn generalise(&mut self, leaf: u32, slot: u32, tokens: &[String]) {
        let pattern = &mut self.patterns[slot as usize];
        let mut changed = false;
        for (template_token, token) in pattern.tokens.iter_mut().zip(tokens) {
            if template_token != token && template_token != WILDCARD {
                *template_token = WILDCARD.to_owned();
                changed = true;
            }
        }
        if changed {
            self.merge_equal_templates(leaf, slot);
        }
    }

    fn merge_equal_templates(&mut self, leaf: u32, slot: u32) {
        let template = self.patterns[slot as usize].tokens.clone();
        let twins: Vec<u32> = self.nodes[leaf as usize]
            .patterns
            .iter()
            .copied()
            .filter(|other| *other != slot && self.patterns[*other as usize].tokens == template)
            .collect();
        for twin in twins {
            // The older pattern survives so the id users saw first stays live.
            let (keep, drop) = if twin < slot {
                (twin, slot)
            } else {
                (slot, twin)
            };
            self.absorb(leaf, keep, drop);
            if drop == slot {
                return;
            }
        }
    }

    /// Makes a `key=word` position a variable once the leaf holds more than
    /// [`MAX_NAMED_VALUES`] patterns that differ only there (`user=root`,
    /// `user=guest`, ... is a user name after all), merging them into the
    /// oldest. Returns the slot that now holds the pattern at `slot`.
    fn widen_named_value(&mut self, leaf: u32, slot: u32) -> u32 {
        let tokens = self.patterns[slot as usize].tokens.clone();
        let mut siblings_by_position: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
        for other in &self.nodes[leaf as usize].patterns {
            if *other == slot {
                continue;
            }
            let comparison = compare(&self.patterns[*other as usize].tokens, &tokens);
            if let Some(position) = comparison.named_conflict {
                if position != usize::MAX
                    && comparison.similarity >= self.config.similarity - 1.0 / tokens.len() as f64
                {
                    siblings_by_position
                        .entry(position)
                        .or_default()
                        .push(*other);
                }
            }
        }
        let Some((position, mut siblings)) = siblings_by_position
            .into_iter()
            .find(|(_, siblings)| siblings.len() >= MAX_NAMED_VALUES)
        else {
            return slot;
        };
        siblings.push(slot);
        siblings.sort_unstable();
        let keep = siblings[0];
        let key_len = tokens[position].find('=').map_or(0, |at| at + 1);
        self.patterns[keep as usize].tokens[position] =
            format!("{}{WILDCARD}", &tokens[position][..key_len]);
        for drop in siblings.into_iter().skip(1) {
            let dropped = self.patterns[drop as usize].clone();
            for (kept_token, dropped_token) in self.patterns[keep as usize]
                .tokens
                .iter_mut()
                .zip(&dropped.tokens)
            {
                if kept_token != dropped_token && !kept_token.contains(WILDCARD) {
                    *kept_token = WILDCARD.to_owned();
                }
            }
            self.absorb(leaf, keep, drop);
        }
        keep
    }

    /// Merges the pattern at `drop` into the one at `keep`.
    fn absorb(&mut self, leaf: u32, keep: u32, drop: u32) {
        let dropped = self.patterns[drop as usize].clone();
        let kept = &mut self.patterns[keep as usize];
        kept.count += dropped.count;
        kept.first_seen_ms = kept.first_seen_ms.min(dropped.first_seen_ms);
        kept.last_seen_ms = kept.last_seen_ms.max(dropped.last_seen_ms);
        let keep_id = kept.id;
        self.patterns[drop as usize].merged_into = Some(keep_id);
        self.nodes[leaf as usize]
            .patterns
            .retain(|other| *other != drop);
        self.num_live -= 1;
    }

    fn found(&mut self, leaf: u32, tokens: Vec<String>) -> u32 {
        let id = self.unused_id(&tokens);
        let slot = self.push_pattern(id, tokens);
        self.num_live += 1;
        self.nodes[leaf as usize].patterns.push(slot);
        slot
    }

    fn overflow_slot(&mut self) -> u32 {
        let id = overflow_pattern_id();
        match self.by_id.get(&id) {
            Some(slot) => *slot,
            None => self.push_pattern(id, vec![WILDCARD.to_owned()]),
        }
    }

    fn push_pattern(&mut self, id: PatternId, tokens: Vec<String>) -> u32 {
        let slot = self.patterns.len() as u32;
        self.patterns.push(Pattern {
            id,
            tokens,
            count: 0,
            first_seen_ms: i64::MAX,
            last_seen_ms: i64::MIN,
            merged_into: None,
        });
        self.by_id.insert(id, slot);
        slot
    }

    /// The founding hash of `tokens`, skipping ids already taken (a collision,
    /// or a template founded again after its pattern was merged away).
    fn unused_id(&self, tokens: &[String]) -> PatternId {
        let mut attempt = 0;
        loop {
            let id = PatternId(founding_hash(tokens, attempt));
            if !self.by_id.contains_key(&id) {
                return id;
            }
            attempt += 1;
        }
    }
}

fn founding_hash(tokens: &[String], attempt: u32) -> u64 {
    let mut hash = Fnv1a::default();
    for token in tokens {
        hash.write(token.as_bytes());
        hash.write(&[0x1f]);
    }
    hash.write(&attempt.to_le_bytes());
    hash.finish()
}

/// How a template and a line's tokens compare.
#[derive(Debug, Clone, Copy)]
struct Comparison {
    /// The share of agreeing positions.
    similarity: f64,
    /// Wildcards in the template (the tie-break: the more general pattern).
    wildcards: usize,
    /// The one `key=word` position where they disagree, if exactly one; two
    /// or more are `Some(usize::MAX)`.
    named_conflict: Option<usize>,
}

impl Comparison {
    /// The similarity a line may join on: none across a `key=word` conflict,
    /// since `status=ok` and `status=failed` name different kinds of line.
    fn joinable_similarity(&self) -> f64 {
        if self.named_conflict.is_some() {
            0.0
        } else {
            self.similarity
        }
    }
}

fn compare(template: &[String], tokens: &[String]) -> Comparison {
    let mut equal = 0usize;
    let mut wildcards = 0usize;
    let mut named_conflict = None;
    for (position, (template_token, token)) in template.iter().zip(tokens).enumerate() {
        if template_token == WILDCARD {
            wildcards += 1;
            // Two variables in one position agree; Drain counts neither, which
            // splits lines that are mostly variables.
            if token.contains(WILDCARD) {
                equal += 1;
            }
        } else if template_token == token {
            equal += 1;
        } else if is_named_word(template_token) && same_key(template_token, token) {
            named_conflict = match named_conflict {
                None => Some(position),
                Some(_) => Some(usize::MAX),
            };
        }
    }
    let len = template.len().max(1);
    Comparison {
        similarity: equal as f64 / len as f64,
        wildcards,
        named_conflict,
    }
}

fn same_key(left: &str, right: &str) -> bool {
    match (left.split_once('='), right.split_once('=')) {
        (Some((left_key, _)), Some((right_key, _))) => left_key == right_key,
        _ => false,
    }
}

/// A `key=value` token whose value the masking kept (a bare word).
fn is_named_word(token: &str) -> bool {
    match token.split_once('=') {
        Some((key, value)) => !key.is_empty() && !value.is_empty() && !value.contains(WILDCARD),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_lines_differing_in_variables_share_a_pattern() {
        let mut miner = PatternMiner::new(MinerConfig::default());
        let first = miner.assign("Received block blk_1 of size 67108864 from /10.0.0.1", 1);
        let second = miner.assign("Received block blk_2 of size 4096 from /10.0.0.2", 2);
        let other = miner.assign("Deleting block blk_3 file /data/blk_3", 3);
        assert_eq!(first, second);
        assert_ne!(first, other);
        let pattern = miner.pattern(first).expect("pattern");
        assert_eq!(
            pattern.template(),
            "Received block <*> of size <*> from <*>"
        );
        assert_eq!(
            (pattern.count, pattern.first_seen_ms, pattern.last_seen_ms),
            (2, 1, 2)
        );
    }

    #[test]
    fn test_ids_are_stable_across_serialisation_and_redelivery() {
        let lines = [
            "user alice logged in",
            "user bob logged in",
            "disk full on sda",
        ];
        let mut miner = PatternMiner::new(MinerConfig::default());
        let ids: Vec<_> = lines.iter().map(|line| miner.assign(line, 0)).collect();
        let saved = serde_json::to_string(&miner).expect("serialise");
        let mut restored: PatternMiner = serde_json::from_str(&saved).expect("deserialise");
        restored.restore_index();
        let again: Vec<_> = lines.iter().map(|line| restored.assign(line, 0)).collect();
        assert_eq!(ids, again);
        // A fresh miner fed the same lines (a redelivery with lost state) agrees too.
        let mut fresh = PatternMiner::new(MinerConfig::default());
        let fresh_ids: Vec<_> = lines.iter().map(|line| fresh.assign(line, 0)).collect();
        assert_eq!(ids, fresh_ids);
    }

    #[test]
    fn test_a_named_word_with_many_values_becomes_a_variable_and_records_merges() {
        let mut miner = PatternMiner::new(MinerConfig::default());
        let users = ["alice", "bob", "carol", "dave", "erin"];
        let ids: Vec<_> = users
            .iter()
            .map(|user| miner.assign(&format!("login accepted for session user={user}"), 0))
            .collect();
        // Four values are four kinds of line...
        assert_eq!(
            ids[..4]
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            4
        );
        // ...the fifth makes the value a variable: all merge into the first.
        assert_eq!(ids[4], ids[0]);
        for merged in &ids[1..4] {
            let pattern = miner.pattern(*merged).expect("merged pattern");
            assert_eq!(pattern.merged_into, Some(ids[0]), "{merged}");
        }
        let survivor = miner.pattern(ids[0]).expect("survivor");
        assert_eq!(survivor.template(), "login accepted for session user=<*>");
        assert_eq!(survivor.count, 5);
        assert_eq!(miner.num_live_patterns(), 1);
        assert_eq!(
            miner.assign("login accepted for session user=frank", 0),
            ids[0]
        );
    }

    #[test]
    fn test_cap_stops_founding_patterns() {
        let mut miner = PatternMiner::new(MinerConfig {
            max_patterns: 3,
            ..MinerConfig::default()
        });
        for word in ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"] {
            miner.assign(&format!("{word} {word} {word}"), 0);
        }
        assert_eq!(miner.num_live_patterns(), 3);
        let overflow = miner.pattern(overflow_pattern_id()).expect("overflow");
        assert_eq!(overflow.count, 3);
        assert_eq!(overflow.template(), WILDCARD);
    }

    #[test]
    fn test_pattern_id_text_round_trips() {
        let id = PatternId(0x00ab_cdef_0123_4567);
        assert_eq!(id.to_string(), "00abcdef01234567");
        assert_eq!("00abcdef01234567".parse::<PatternId>().expect("parse"), id);
        assert!("xyz".parse::<PatternId>().is_err());
    }
}
