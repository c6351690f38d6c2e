//! Fuzz target `report`: see `writepath::robustness::report` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    writepath::robustness::report(data);
});
