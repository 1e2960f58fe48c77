//! The real/bogus model: a gradient-boosted tree ensemble (forust-ml) over
//! a project's metrics and context, trained on the team's verdicts, with
//! scores calibrated to probabilities by Platt scaling fitted out of fold.
//!
//! Pure computation; `model::run` reads and writes the database.

pub mod run;

use forust_ml::gradientbooster::ImportanceMethod;
use forust_ml::objective::ObjectiveType;
use forust_ml::{GradientBooster, Matrix};

/// How many folds the cross-validation uses.
pub const FOLDS: usize = 5;
/// Fewest labelled candidates of each class a model is trained on.
pub const MIN_PER_CLASS: usize = 10;

/// Stand-ins for the infinities, so that the booster's quantile binning
/// (which interpolates between values) never meets inf − inf. Large enough
/// to sort after (before) every finite value a survey writes.
const POS_INF: f64 = 1e300;
const NEG_INF: f64 = -1e300;

fn finite_or_missing(v: f64) -> f64 {
    if v == f64::INFINITY {
        POS_INF
    } else if v == f64::NEG_INFINITY {
        NEG_INF
    } else {
        v
    }
}

/// A column-major matrix of features: `columns[j][i]` is feature `j` of
/// row `i`. NaN means "missing" (a metric the pipeline did not write, or
/// wrote as NaN); the booster learns which way missing values go.
#[derive(Debug, Clone, Default)]
pub struct Features {
    pub names: Vec<String>,
    pub columns: Vec<Vec<f64>>,
}

impl Features {
    pub fn new(names: Vec<String>, rows: usize) -> Self {
        let columns = names.iter().map(|_| vec![f64::NAN; rows]).collect();
        Self { names, columns }
    }
    /// From stored values, mapping the infinities as `set` does.
    pub fn from_columns(names: Vec<String>, mut columns: Vec<Vec<f64>>) -> Self {
        for v in columns.iter_mut().flatten() {
            *v = finite_or_missing(*v);
        }
        Self { names, columns }
    }
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }
    /// Sets a value, mapping ±∞ to large finite stand-ins (an infinite
    /// flux ratio still means "very large", not "unknown").
    pub fn set(&mut self, column: usize, row: usize, v: f64) {
        self.columns[column][row] = finite_or_missing(v);
    }
    fn flat(&self, rows: &[usize]) -> Vec<f64> {
        let mut out = Vec::with_capacity(rows.len() * self.columns.len());
        for c in &self.columns {
            out.extend(rows.iter().map(|&i| c[i]));
        }
        out
    }
}

/// What training produced: the booster, its calibration and how well it did
/// out of fold.
#[derive(Debug, Clone)]
pub struct Trained {
    pub booster: String,
    pub platt_a: f64,
    pub platt_b: f64,
    pub auc: f64,
    pub precision_at_95: f64,
    /// Normalised gain importance per feature, in `Features::names` order.
    pub importances: Vec<f64>,
    /// Out-of-fold calibrated P(real) of each training row.
    pub out_of_fold: Vec<f64>,
    pub n_real: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "a model needs at least {MIN_PER_CLASS} candidates labelled real and {MIN_PER_CLASS} labelled not real; there are {real} and {not_real}"
    )]
    TooFewLabels { real: usize, not_real: usize },
    #[error("the project has no features to learn from")]
    NoFeatures,
    #[error("the booster failed: {0}")]
    Booster(String),
}

fn booster(seed: u64) -> GradientBooster {
    GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(100)
        .set_learning_rate(0.1)
        .set_max_depth(4)
        .set_min_leaf_weight(1.0)
        .set_l2(1.0)
        .set_seed(seed)
        // One thread: training leaves the other cores to the requests it
        // must never slow down.
        .set_parallel(false)
}

fn fit(x: &Features, rows: &[usize], y: &[f64], seed: u64) -> Result<GradientBooster, ModelError> {
    let data = x.flat(rows);
    let labels: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
    let m = Matrix::new(&data, rows.len(), x.columns.len());
    let mut b = booster(seed);
    b.fit(&m, &labels, &vec![1.0; rows.len()], None)
        .map_err(|e| ModelError::Booster(e.to_string()))?;
    Ok(b)
}

fn log_odds(b: &GradientBooster, x: &Features, rows: &[usize]) -> Vec<f64> {
    let data = x.flat(rows);
    b.predict(&Matrix::new(&data, rows.len(), x.columns.len()), false)
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// Trains on labelled rows (`y` is 1 for real, 0 for not real): five-fold
/// cross-validation for the figures and the calibration, then one model on
/// everything. Folds are stratified and fixed by `seed`, so the same labels
/// give the same model.
pub fn train(x: &Features, y: &[f64], seed: u64) -> Result<Trained, ModelError> {
    let real = y.iter().filter(|&&v| v > 0.5).count();
    let not_real = y.len() - real;
    if real < MIN_PER_CLASS || not_real < MIN_PER_CLASS {
        return Err(ModelError::TooFewLabels { real, not_real });
    }
    if x.columns.is_empty() {
        return Err(ModelError::NoFeatures);
    }
    let fold = folds(y, seed);
    let mut oof_logit = vec![0.0; y.len()];
    for k in 0..FOLDS {
        let train_rows: Vec<usize> = (0..y.len()).filter(|&i| fold[i] != k).collect();
        let test_rows: Vec<usize> = (0..y.len()).filter(|&i| fold[i] == k).collect();
        let b = fit(x, &train_rows, y, seed + k as u64)?;
        for (i, z) in test_rows.iter().zip(log_odds(&b, x, &test_rows)) {
            oof_logit[*i] = z;
        }
    }
    let (platt_a, platt_b) = platt(&oof_logit, y);
    let out_of_fold: Vec<f64> = oof_logit
        .iter()
        .map(|z| sigmoid(platt_a * z + platt_b))
        .collect();
    let all: Vec<usize> = (0..y.len()).collect();
    let full = fit(x, &all, y, seed)?;
    let gains = full.calculate_feature_importance(ImportanceMethod::TotalGain, true);
    let importances = (0..x.columns.len())
        .map(|j| f64::from(gains.get(&j).copied().unwrap_or(0.0)))
        .collect();
    Ok(Trained {
        booster: full
            .json_dump()
            .map_err(|e| ModelError::Booster(e.to_string()))?,
        platt_a,
        platt_b,
        auc: auc(&out_of_fold, y),
        precision_at_95: precision_at_recall(&out_of_fold, y, 0.95),
        importances,
        out_of_fold,
        n_real: real,
    })
}

/// A stored model, ready to score.
pub struct Scorer {
    booster: GradientBooster,
    a: f64,
    b: f64,
}

impl Scorer {
    pub fn load(json: &str, a: f64, b: f64) -> Result<Self, ModelError> {
        let booster =
            GradientBooster::from_json(json).map_err(|e| ModelError::Booster(e.to_string()))?;
        Ok(Self { booster, a, b })
    }
    /// Calibrated P(real) of every row.
    pub fn score(&self, x: &Features) -> Vec<f64> {
        let all: Vec<usize> = (0..x.rows()).collect();
        log_odds(&self.booster, x, &all)
            .into_iter()
            .map(|z| sigmoid(self.a * z + self.b))
            .collect()
    }
}

/// Stratified fold of each row: each class is dealt round-robin after a
/// seeded shuffle.
fn folds(y: &[f64], seed: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..y.len()).collect();
    let key = |i: usize| splitmix(seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    order.sort_by_key(|&i| key(i));
    let mut fold = vec![0; y.len()];
    let (mut pos, mut neg) = (0, 0);
    for i in order {
        let n = if y[i] > 0.5 { &mut pos } else { &mut neg };
        fold[i] = *n % FOLDS;
        *n += 1;
    }
    fold
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Platt scaling: the logistic regression of the labels on the log-odds,
/// by Newton's method, with Platt's smoothed targets so that a perfectly
/// separated set gives large but finite coefficients.
pub fn platt(z: &[f64], y: &[f64]) -> (f64, f64) {
    let pos = y.iter().filter(|&&v| v > 0.5).count() as f64;
    let neg = y.len() as f64 - pos;
    let hi = (pos + 1.0) / (pos + 2.0);
    let lo = 1.0 / (neg + 2.0);
    let t: Vec<f64> = y.iter().map(|&v| if v > 0.5 { hi } else { lo }).collect();
    let (mut a, mut b) = (1.0, 0.0);
    for _ in 0..100 {
        let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for (zi, ti) in z.iter().zip(&t) {
            let p = sigmoid(a * zi + b);
            let w = (p * (1.0 - p)).max(1e-12);
            ga += (p - ti) * zi;
            gb += p - ti;
            haa += w * zi * zi;
            hab += w * zi;
            hbb += w;
        }
        // A little ridge keeps the step defined when every z is the same.
        haa += 1e-9;
        hbb += 1e-9;
        let det = haa * hbb - hab * hab;
        if det.abs() < 1e-18 {
            break;
        }
        let da = (hbb * ga - hab * gb) / det;
        let db = (haa * gb - hab * ga) / det;
        a -= da;
        b -= db;
        if da.abs() < 1e-10 && db.abs() < 1e-10 {
            break;
        }
    }
    (a, b)
}

/// Area under the ROC curve (ties count half), by ranks.
pub fn auc(score: &[f64], y: &[f64]) -> f64 {
    let mut v: Vec<(f64, bool)> = score
        .iter()
        .copied()
        .zip(y.iter().map(|&l| l > 0.5))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut pos) = (0.0, 0.0);
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0;
        for item in &v[i..j] {
            if item.1 {
                rank_sum += mid;
                pos += 1.0;
            }
        }
        i = j;
    }
    let neg = v.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return 0.5;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// The precision at the highest threshold that still finds `recall` of the
/// real candidates.
pub fn precision_at_recall(score: &[f64], y: &[f64], recall: f64) -> f64 {
    let mut v: Vec<(f64, bool)> = score
        .iter()
        .copied()
        .zip(y.iter().map(|&l| l > 0.5))
        .collect();
    v.sort_by(|a, b| b.0.total_cmp(&a.0));
    let pos = v.iter().filter(|x| x.1).count() as f64;
    if pos == 0.0 {
        return 0.0;
    }
    let (mut tp, mut n) = (0.0, 0.0);
    let mut i = 0;
    while i < v.len() {
        // Everything tied with the threshold is taken together.
        let mut j = i;
        while j < v.len() && v[j].0 == v[i].0 {
            tp += f64::from(u8::from(v[j].1));
            n += 1.0;
            j += 1;
        }
        if tp / pos >= recall {
            return tp / n;
        }
        i = j;
    }
    pos / v.len() as f64
}

#[cfg(test)]
mod tests;
