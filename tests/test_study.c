/* What every study shares: amounts ("25%", "10") are parsed against the
 * eligible units with clear errors, calibration windows and texts use the
 * one set of defaults. Expected values are worked out by hand. */
#include "check.h"
#include "headroom/study.h"

#include <string.h>

#define TOKENIZER SHARED("models/stories260K/tok512.bin")

static void amounts_are_shares_rounded_to_the_nearest_unit_or_counts(void) {
    struct {
        const char *text;
        int64_t eligible, want;
    } ok[] = {
        {"25%", 40, 10},
        {"2.5%", 40, 1},
        {"40%", 40, 16},
        {"12.5%", 4, 1} /* 0.5 rounds up */,
        {"37.5%", 4, 2} /* 1.5 rounds up */,
        {"10%", 36, 4} /* 3.6 */,
        {"12.%", 40, 5} /* 4.8 */,
        {".5%", 400, 2},
        {"39", 40, 39},
        {"1", 2, 1},
        {"99%", 1000, 990},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t got = -1;
        hr_status st = hr_parse_amount(ok[i].text, ok[i].eligible, &got);
        CHECK(st == HR_OK && got == ok[i].want, "'%s' of %lld: status %d, %lld (want %lld): %s", ok[i].text,
              (long long)ok[i].eligible, st, (long long)got, (long long)ok[i].want, hr_last_error());
    }
}

static void amounts_that_remove_nothing_or_everything_are_refused(void) {
    struct {
        const char *text;
        int64_t eligible;
        const char *want;
    } bad[] = {
        {"1%", 40, "1% of 40 rounds to 0; the smallest share that removes one is 1.25%"},
        {"0", 40, "0 removes nothing"},
        {"0%", 40, "0% removes nothing"},
        {"100%", 40, "would remove everything (the amount must be below 100%)"},
        {"120%", 40, "would remove everything"},
        {"99.9%", 40, "99.9% of 40 rounds to all 40"},
        {"40", 40, "40 is not below the 40 that can take part"},
        {"10.5", 40, "is not a percentage (\"25%\") or a count (\"10\")"},
        {"-5", 40, "is not a percentage"},
        {"", 40, "is not a percentage"},
        {"%", 40, "is not a percentage"},
        {"0x10", 40, "is not a percentage"},
        {"1e1%", 40, "is not a percentage"},
        {" 5", 40, "is not a percentage"},
        {"5 %", 40, "is not a percentage"},
        {"nan%", 40, "is not a percentage"},
        {"1.2.3%", 40, "is not a percentage"},
        {"5", 1, "only 1 units can take part"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t got = -7;
        hr_status st = hr_parse_amount(bad[i].text, bad[i].eligible, &got);
        CHECK(st != HR_OK && got == -7 && strstr(hr_last_error(), bad[i].want), "'%s' of %lld: status %d, '%s'",
              bad[i].text, (long long)bad[i].eligible, st, hr_last_error());
    }
    int64_t x;
    CHECK(hr_parse_amount(NULL, 40, &x) == HR_ERR_INVALID_ARG, "NULL amount accepted");
}

static void calibration_windows_default_to_256_tokens_or_the_context(void) {
    CHECK(hr_calib_window(512, 0) == 256, "%d", hr_calib_window(512, 0));
    CHECK(hr_calib_window(128, 0) == 128, "%d", hr_calib_window(128, 0));
    CHECK(hr_calib_window(512, 48) == 48, "%d", hr_calib_window(512, 48));
    CHECK(HR_CALIB_WINDOW == 256 && HR_CALIB_HEADS_TOKENS == 1024 && HR_CALIB_SURGERY_TOKENS == 2048,
          "calibration defaults changed");
}

static void calibration_text_starts_with_bos_and_respects_the_budget(void) {
    hr_tokenizer *tok = NULL;
    CHECK(hr_tokenizer_load(TOKENIZER, &tok) == HR_OK, "%s", hr_last_error());
    if (!tok) return;
    const char *text = "Once upon a time there was a little girl named Lily. She loved to play outside.";
    int32_t *ids = NULL, *all = NULL;
    size_t n = 0, n_all = 0;
    CHECK(hr_calib_tokens(tok, text, strlen(text), 0, &all, &n_all) == HR_OK, "%s", hr_last_error());
    CHECK(n_all > 12 && all[0] == hr_tokenizer_bos(tok), "%zu tokens, first %d", n_all, all ? all[0] : -1);
    CHECK(hr_calib_tokens(tok, text, strlen(text), 12, &ids, &n) == HR_OK && n == 12, "%zu tokens", n);
    CHECK(ids && all && memcmp(ids, all, 12 * sizeof(int32_t)) == 0, "the budget is not a prefix");
    hr_free(ids);
    hr_free(all);
    ids = NULL;
    CHECK(hr_calib_tokens(tok, "Once", 4, 0, &ids, &n) == HR_ERR_RANGE && !ids &&
              strstr(hr_last_error(), "at least 8 are needed"),
          "%s", hr_last_error());
    hr_tokenizer_free(tok);
}

int main(void) {
    RUN(amounts_are_shares_rounded_to_the_nearest_unit_or_counts);
    RUN(amounts_that_remove_nothing_or_everything_are_refused);
    RUN(calibration_windows_default_to_256_tokens_or_the_context);
    RUN(calibration_text_starts_with_bos_and_respects_the_budget);
    TEST_MAIN_END();
}
