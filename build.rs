// The migrations are compiled in (`sqlx::migrate!`), and on stable Rust the
// macro cannot tell cargo to watch their folder: without this, adding a
// migration rebuilt nothing, and the binary built before it refused a
// database that a fresher build had already migrated.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
