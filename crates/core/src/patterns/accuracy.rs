//! Grouping accuracy as Loghub defines it (Zhu et al., ICSE-SEIP 2019): a line
//! is parsed correctly when the set of lines given its predicted group is
//! exactly the set of lines of its true group.

use std::collections::HashMap;
use std::hash::Hash;

/// The share of lines whose predicted group equals their true group as a set.
/// `predicted[i]` and `truth[i]` label line `i`; the slices have one length.
pub fn grouping_accuracy<P: Eq + Hash, T: Eq + Hash>(predicted: &[P], truth: &[T]) -> f64 {
    debug_assert_eq!(predicted.len(), truth.len());
    if predicted.is_empty() {
        return 1.0;
    }
    let mut true_sizes: HashMap<&T, usize> = HashMap::new();
    for label in truth {
        *true_sizes.entry(label).or_default() += 1;
    }
    let mut predicted_groups: HashMap<&P, Vec<usize>> = HashMap::new();
    for (line, label) in predicted.iter().enumerate() {
        predicted_groups.entry(label).or_default().push(line);
    }
    let mut correct = 0usize;
    for lines in predicted_groups.values() {
        let first_truth = &truth[lines[0]];
        let pure = lines.iter().all(|line| &truth[*line] == first_truth);
        if pure && true_sizes.get(first_truth) == Some(&lines.len()) {
            correct += lines.len();
        }
    }
    correct as f64 / predicted.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_accuracy_counts_only_exact_groups() {
        // Truth: {0,1} A, {2,3} B, {4} C. Prediction splits B and joins C into A.
        let truth = ["A", "A", "B", "B", "C"];
        assert_eq!(grouping_accuracy(&[1, 1, 2, 2, 3], &truth), 1.0);
        assert_eq!(grouping_accuracy(&[1, 1, 2, 3, 4], &truth), 0.6);
        assert_eq!(grouping_accuracy(&[1, 1, 2, 2, 1], &truth), 0.4);
    }
}
