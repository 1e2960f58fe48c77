//! Answers that take real work to make (reading a FITS file), kept by a
//! key that changes when their input does, and made only a few at once so
//! one page full of them cannot take every core.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{Semaphore, SemaphorePermit};

use super::error::AppError;

pub struct Cache {
    makers: Semaphore,
    capacity: usize,
    kept: Mutex<Kept>,
}

/// The answers, and their keys oldest first.
#[derive(Default)]
struct Kept {
    map: HashMap<String, Arc<String>>,
    order: VecDeque<String>,
}

impl Cache {
    /// Keeps the last `capacity` answers; `makers` are made at once.
    pub fn new(capacity: usize, makers: usize) -> Self {
        Cache {
            makers: Semaphore::new(makers),
            capacity,
            kept: Mutex::new(Kept::default()),
        }
    }

    pub fn get(&self, key: &str) -> Option<Arc<String>> {
        self.kept.lock().ok()?.map.get(key).cloned()
    }

    /// Waits for a turn to make an answer.
    pub async fn slot(&self) -> Result<SemaphorePermit<'_>, AppError> {
        self.makers
            .acquire()
            .await
            .map_err(|_| AppError::internal("the cache is closed"))
    }

    pub fn put(&self, key: String, answer: Arc<String>) {
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        let Kept { map, order } = &mut *kept;
        if map.insert(key.clone(), answer).is_none() {
            order.push_back(key);
        }
        while order.len() > self.capacity {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_answer_goes_first() {
        let c = Cache::new(2, 1);
        c.put("a".into(), Arc::new("1".into()));
        c.put("b".into(), Arc::new("2".into()));
        c.put("a".into(), Arc::new("1'".into()));
        c.put("c".into(), Arc::new("3".into()));
        assert!(c.get("a").is_none());
        assert_eq!(c.get("b").as_deref().map(String::as_str), Some("2"));
        assert_eq!(c.get("c").as_deref().map(String::as_str), Some("3"));
    }
}
