use super::*;

/// A deterministic uniform stream in [0, 1).
struct Stream(u64);
impl Stream {
    fn next(&mut self) -> f64 {
        self.0 = splitmix(self.0);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn features(cols: usize, rows: usize, s: &mut Stream) -> Features {
    let mut x = Features::new((0..cols).map(|j| format!("m{j}")).collect(), rows);
    for j in 0..cols {
        for i in 0..rows {
            x.set(j, i, s.next());
        }
    }
    x
}

#[test]
fn auc_and_precision_have_known_answers() {
    let y = [0.0, 0.0, 1.0, 1.0];
    assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &y), 1.0);
    assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &y), 0.0);
    assert_eq!(auc(&[0.5, 0.5, 0.5, 0.5], &y), 0.5);
    assert_eq!(auc(&[0.1, 0.8, 0.3, 0.9], &y), 0.75);
    // Both reals are needed for 95 %: the top three hold them, one is bogus.
    assert!((precision_at_recall(&[0.1, 0.8, 0.3, 0.9], &y, 0.95) - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(precision_at_recall(&[0.1, 0.2, 0.8, 0.9], &y, 0.95), 1.0);
}

#[test]
fn platt_recovers_a_known_slope() {
    // Labels drawn from sigmoid(2z - 1): the fit finds about (2, -1).
    let mut s = Stream(3);
    let z: Vec<f64> = (0..20_000).map(|_| s.next() * 8.0 - 4.0).collect();
    let y: Vec<f64> = z
        .iter()
        .map(|&z| f64::from(u8::from(s.next() < sigmoid(2.0 * z - 1.0))))
        .collect();
    let (a, b) = platt(&z, &y);
    assert!((a - 2.0).abs() < 0.15, "slope {a}");
    assert!((b + 1.0).abs() < 0.15, "intercept {b}");
}

#[test]
fn a_perfectly_separable_set_scores_near_zero_and_one() {
    let mut s = Stream(11);
    let x = features(3, 600, &mut s);
    let y: Vec<f64> = (0..600)
        .map(|i| f64::from(u8::from(x.columns[0][i] > 0.7)))
        .collect();
    let t = train(&x, &y, 1).unwrap();
    assert!(t.auc > 0.99, "auc {}", t.auc);
    assert!(t.precision_at_95 > 0.95);
    let scorer = Scorer::load(&t.booster, t.platt_a, t.platt_b).unwrap();
    let fresh = features(3, 2_000, &mut s);
    let p = scorer.score(&fresh);
    let (mut wrong, mut highest_bogus, mut lowest_real) = (0, 0.0f64, 1.0f64);
    for (&v, &p) in fresh.columns[0].iter().zip(&p) {
        // The boundary itself is where the model may hesitate.
        if (v - 0.7).abs() < 0.02 {
            continue;
        }
        let is_real = v > 0.7;
        if is_real {
            lowest_real = lowest_real.min(p);
        } else {
            highest_bogus = highest_bogus.max(p);
        }
        wrong += usize::from((p > 0.5) != is_real);
    }
    assert_eq!(wrong, 0);
    assert!(
        lowest_real > 0.9,
        "lowest score of a real one {lowest_real}"
    );
    assert!(
        highest_bogus < 0.1,
        "highest score of a bogus one {highest_bogus}"
    );
    // The feature that decides carries nearly all the importance.
    assert!(t.importances[0] > 0.9, "{:?}", t.importances);
}

#[test]
fn pure_noise_scores_the_base_rate() {
    let mut s = Stream(5);
    let x = features(4, 2_000, &mut s);
    // 20 % real, unrelated to the features.
    let y: Vec<f64> = (0..2_000)
        .map(|_| f64::from(u8::from(s.next() < 0.2)))
        .collect();
    let base = y.iter().sum::<f64>() / 2_000.0;
    let t = train(&x, &y, 1).unwrap();
    assert!((t.auc - 0.5).abs() < 0.06, "auc {}", t.auc);
    let scorer = Scorer::load(&t.booster, t.platt_a, t.platt_b).unwrap();
    let p = scorer.score(&features(4, 5_000, &mut s));
    let mean = p.iter().sum::<f64>() / p.len() as f64;
    assert!(
        (mean - base).abs() < 0.03,
        "mean {mean} against base rate {base}"
    );
    // Calibrated: nothing claims to be a sure thing.
    let top = p.iter().copied().fold(0.0, f64::max);
    assert!(
        p.iter().all(|&v| v > 0.05) && top < 0.5,
        "highest score {top}"
    );
}

#[test]
fn missing_and_infinite_values_are_information() {
    // Real ones have no value (NaN) or +inf; bogus ones a finite value.
    let mut x = Features::new(vec!["ratio".into()], 400);
    let mut y = Vec::new();
    for i in 0..400 {
        match i % 4 {
            0 => x.set(0, i, f64::NAN),
            1 => x.set(0, i, f64::INFINITY),
            2 => x.set(0, i, -(i as f64)),
            _ => x.set(0, i, f64::NEG_INFINITY),
        }
        y.push(f64::from(u8::from(i % 4 < 2)));
    }
    assert!(x.columns[0].iter().all(|v| v.is_nan() || v.is_finite()));
    let t = train(&x, &y, 2).unwrap();
    assert!(t.auc > 0.99, "auc {}", t.auc);
}

#[test]
fn too_few_labels_is_an_error_that_says_how_many() {
    let mut s = Stream(1);
    let x = features(2, 30, &mut s);
    let y: Vec<f64> = (0..30).map(|i| f64::from(u8::from(i < 5))).collect();
    let e = train(&x, &y, 1).unwrap_err().to_string();
    assert!(e.contains("there are 5 and 25"), "{e}");
}

#[test]
fn the_same_labels_give_the_same_model() {
    let mut s = Stream(9);
    let x = features(3, 300, &mut s);
    let y: Vec<f64> = (0..300)
        .map(|i| f64::from(u8::from(x.columns[1][i] > 0.5)))
        .collect();
    let a = train(&x, &y, 4).unwrap();
    let b = train(&x, &y, 4).unwrap();
    assert_eq!(a.booster, b.booster);
    assert_eq!(a.auc, b.auc);
}
