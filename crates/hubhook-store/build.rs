// `sqlx::migrate!` embeds the migration files at compile time, but cargo does not know the
// macro reads them: without this, adding a migration would not rebuild the crate.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
