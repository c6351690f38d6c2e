//! Fuzz target `mountinfo`: see `writepath::robustness::mountinfo` for the properties checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    writepath::robustness::mountinfo(data);
});
