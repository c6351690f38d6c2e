//! Fuzz target `paths`: see `writepath::robustness::paths` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    writepath::robustness::paths(data);
});
