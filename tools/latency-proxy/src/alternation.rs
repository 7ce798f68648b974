//! Two settings of a proxy's delay compared on one process and one upstream: the
//! settings taken in turn, invocation by invocation (A B B A, so that a drift over
//! the run weighs on both alike), and each sample paired with its neighbour of the
//! other setting. The median of the pairs' differences is what the delay added,
//! free of what changes between runs (a fresh upstream's warm-up, the machine's
//! load), which is larger than a round trip on a loopback benchmark.

/// Whether the `ordinal`-th invocation (from 0) takes the delayed setting: A B B A,
/// repeated.
pub fn delayed_turn(ordinal: usize) -> bool {
    matches!(ordinal % 4, 1 | 2)
}

/// The differences (delayed minus undelayed) of neighbouring samples of opposite
/// settings, in order: each sample is paired at most once, with the next sample
/// if its setting is the other one; a sample followed by one of its own setting
/// (after a retry, or a kind of event whose turns fall unevenly) is left unpaired.
pub fn paired_differences(samples: &[(f64, bool)]) -> Vec<f64> {
    let mut differences = Vec::new();
    let mut waiting: Option<(f64, bool)> = None;
    for &(value, delayed) in samples {
        match waiting {
            Some((other, other_delayed)) if other_delayed != delayed => {
                differences.push(if delayed {
                    value - other
                } else {
                    other - value
                });
                waiting = None;
            }
            _ => waiting = Some((value, delayed)),
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_run_a_b_b_a_so_each_setting_gets_half() {
        let turns: Vec<bool> = (0..8).map(delayed_turn).collect();
        assert_eq!(turns, [false, true, true, false, false, true, true, false]);
    }

    #[test]
    fn an_event_kind_on_every_other_turn_still_meets_both_settings() {
        // A webhook run sends an intent's `pending` then its outcome: the even
        // ordinals are one kind, the odd ones the other.
        for kind in 0..2 {
            let turns: Vec<bool> = (kind..16).step_by(2).map(delayed_turn).collect();
            let delayed = turns.iter().filter(|d| **d).count();
            assert_eq!(delayed, turns.len() / 2, "kind {kind}: {turns:?}");
            let samples: Vec<(f64, bool)> = turns.iter().map(|&d| (1.0, d)).collect();
            assert_eq!(paired_differences(&samples).len(), turns.len() / 2);
        }
    }

    #[test]
    fn each_difference_is_delayed_minus_undelayed_whichever_came_first() {
        let samples = [(10.0, false), (15.0, true), (16.0, true), (11.0, false)];
        assert_eq!(paired_differences(&samples), [5.0, 5.0]);
    }

    #[test]
    fn a_sample_next_to_its_own_setting_is_left_unpaired() {
        // A retried invocation repeats its setting: the first of the two waits alone.
        let samples = [(10.0, false), (10.5, false), (15.0, true), (20.0, true)];
        assert_eq!(paired_differences(&samples), [4.5]);
    }
}
