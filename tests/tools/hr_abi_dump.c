/* hr_abi_dump: prints the size of every public struct the Python package
 * mirrors with ctypes (python/headroom/_lib.py) and the offset of each of
 * its fields, one per line:
 *     hr_context_params 24
 *     hr_context_params.n_ctx 0
 * python/tests/test_abi.py compares them with the ctypes layouts, so a field
 * added to a header fails the Python tests instead of corrupting memory.
 */
#include "headroom/headroom.h"
#include "headroom/train.h"

#include <stddef.h>
#include <stdio.h>

#define S(T) printf("%s %zu\n", #T, sizeof(T))
#define F(T, f) printf("%s.%s %zu\n", #T, #f, offsetof(T, f))

int main(void) {
    S(hr_hook_event), F(hr_hook_event, point), F(hr_hook_event, layer), F(hr_hook_event, head),
        F(hr_hook_event, n_tokens), F(hr_hook_event, pos0), F(hr_hook_event, n_cols), F(hr_hook_event, stride),
        F(hr_hook_event, data);
    S(hr_context_params), F(hr_context_params, n_ctx), F(hr_context_params, n_threads), F(hr_context_params, n_batch),
        F(hr_context_params, kv_plan), F(hr_context_params, blas_prefill), F(hr_context_params, bf16_dot),
        F(hr_context_params, int8_dot);
    S(hr_encode_params), F(hr_encode_params, add_bos), F(hr_encode_params, add_eos),
        F(hr_encode_params, add_space_prefix), F(hr_encode_params, parse_special);
    S(hr_sampler_params), F(hr_sampler_params, temperature), F(hr_sampler_params, top_p), F(hr_sampler_params, seed);
    S(hr_output_params), F(hr_output_params, kind), F(hr_output_params, format), F(hr_output_params, inputs),
        F(hr_output_params, n_inputs), F(hr_output_params, force);
    S(hr_ppl_params), F(hr_ppl_params, n_ctx), F(hr_ppl_params, stride), F(hr_ppl_params, protocol),
        F(hr_ppl_params, bos), F(hr_ppl_params, progress), F(hr_ppl_params, progress_user_data),
        F(hr_ppl_params, progress_phase), F(hr_ppl_params, heads), F(hr_ppl_params, calib_tokens),
        F(hr_ppl_params, n_calib_tokens);
    S(hr_ppl_result), F(hr_ppl_result, n_scored), F(hr_ppl_result, n_evaluated), F(hr_ppl_result, n_windows),
        F(hr_ppl_result, mean_nll), F(hr_ppl_result, ppl), F(hr_ppl_result, ppl_stderr), F(hr_ppl_result, seconds),
        F(hr_ppl_result, tokens_per_s);
    S(hr_head_method_info), F(hr_head_method_info, id), F(hr_head_method_info, name), F(hr_head_method_info, paper),
        F(hr_head_method_info, formula), F(hr_head_method_info, good_for), F(hr_head_method_info, higher),
        F(hr_head_method_info, opt_in);
    S(hr_layer_metric_info), F(hr_layer_metric_info, id), F(hr_layer_metric_info, name), F(hr_layer_metric_info, paper),
        F(hr_layer_metric_info, formula);
    S(hr_heads_params), F(hr_heads_params, tokens), F(hr_heads_params, n_tokens), F(hr_heads_params, bos),
        F(hr_heads_params, window), F(hr_heads_params, max_tokens), F(hr_heads_params, seed),
        F(hr_heads_params, mean_ablation), F(hr_heads_params, tok), F(hr_heads_params, rep_len),
        F(hr_heads_params, rep_seqs), F(hr_heads_params, n_needles), F(hr_heads_params, needle_len),
        F(hr_heads_params, natural_needles), F(hr_heads_params, fdtm_prompts), F(hr_heads_params, fdtm_prompt_len),
        F(hr_heads_params, fdtm_gen), F(hr_heads_params, progress), F(hr_heads_params, progress_ud),
        F(hr_heads_params, progress_phase), F(hr_heads_params, no_layer_metrics);
    S(hr_heads_meta), F(hr_heads_meta, model_path), F(hr_heads_meta, arch), F(hr_heads_meta, text_path),
        F(hr_heads_meta, seed);
    S(hr_lab_report_params), F(hr_lab_report_params, model_path), F(hr_lab_report_params, text_path),
        F(hr_lab_report_params, seed), F(hr_lab_report_params, top), F(hr_lab_report_params, text_tokens),
        F(hr_lab_report_params, n_text_tokens), F(hr_lab_report_params, bos), F(hr_lab_report_params, pattern_tokens),
        F(hr_lab_report_params, n_pattern_tokens), F(hr_lab_report_params, tok);
    S(hr_kv_policy), F(hr_kv_policy, kind), F(hr_kv_policy, sink), F(hr_kv_policy, window), F(hr_kv_policy, budget);
    S(hr_prune_params), F(hr_prune_params, scores), F(hr_prune_params, method), F(hr_prune_params, invert),
        F(hr_prune_params, seed), F(hr_prune_params, heads), F(hr_prune_params, mlp), F(hr_prune_params, mlp_method),
        F(hr_prune_params, drop_attn), F(hr_prune_params, drop_mlp), F(hr_prune_params, drop_blocks),
        F(hr_prune_params, layer_metric), F(hr_prune_params, budget), F(hr_prune_params, uniform),
        F(hr_prune_params, strict), F(hr_prune_params, uneven_duplicate), F(hr_prune_params, text),
        F(hr_prune_params, text_len), F(hr_prune_params, max_tokens), F(hr_prune_params, window),
        F(hr_prune_params, n_threads), F(hr_prune_params, progress_phase), F(hr_prune_params, progress_user_data),
        F(hr_prune_params, drop_sublayers), F(hr_prune_params, iterative), F(hr_prune_params, sublayers_by_output);
    S(hr_mod10_probe), F(hr_mod10_probe, n), F(hr_mod10_probe, n_classes), F(hr_mod10_probe, train_accuracy),
        F(hr_mod10_probe, loo_accuracy), F(hr_mod10_probe, chance);
    S(hr_prune_plan_result), F(hr_prune_plan_result, requested), F(hr_prune_plan_result, removed),
        F(hr_prune_plan_result, reason);
    S(hr_prune_report_meta), F(hr_prune_report_meta, base), F(hr_prune_report_meta, output),
        F(hr_prune_report_meta, output_hf), F(hr_prune_report_meta, text);
    S(hr_mc_item), F(hr_mc_item, context), F(hr_mc_item, choices), F(hr_mc_item, n_choices), F(hr_mc_item, gold);
    S(hr_mc_task), F(hr_mc_task, items), F(hr_mc_task, n_items);
    S(hr_eval_params), F(hr_eval_params, text), F(hr_eval_params, text_len), F(hr_eval_params, n_ctx),
        F(hr_eval_params, windows), F(hr_eval_params, max_tokens), F(hr_eval_params, fdtm_prompts),
        F(hr_eval_params, fdtm_prompt_len), F(hr_eval_params, fdtm_gen), F(hr_eval_params, passkey),
        F(hr_eval_params, passkey_trials), F(hr_eval_params, tasks), F(hr_eval_params, speed), F(hr_eval_params, seed),
        F(hr_eval_params, n_threads), F(hr_eval_params, bf16_dot), F(hr_eval_params, int8_dot),
        F(hr_eval_params, cand_kv_plan), F(hr_eval_params, cand_kv_random), F(hr_eval_params, cand_heads),
        F(hr_eval_params, calib_tokens), F(hr_eval_params, n_calib_tokens), F(hr_eval_params, recall),
        F(hr_eval_params, recall_items), F(hr_eval_params, base_path), F(hr_eval_params, cand_path),
        F(hr_eval_params, text_path), F(hr_eval_params, tasks_path), F(hr_eval_params, progress_phase),
        F(hr_eval_params, progress_user_data);
    S(hr_head_mask_params), F(hr_head_mask_params, mask_heads), F(hr_head_mask_params, mean_heads),
        F(hr_head_mask_params, gates_text), F(hr_head_mask_params, gates_name), F(hr_head_mask_params, random_heads),
        F(hr_head_mask_params, seed);
    S(hr_params_params), F(hr_params_params, copy_weights), F(hr_params_params, lora_rank),
        F(hr_params_params, lora_alpha), F(hr_params_params, lora_targets), F(hr_params_params, seed);
    S(hr_param_info), F(hr_param_info, name), F(hr_param_info, kind), F(hr_param_info, layer), F(hr_param_info, target),
        F(hr_param_info, rows), F(hr_param_info, cols), F(hr_param_info, writable);
    S(hr_grad_params), F(hr_grad_params, n_threads), F(hr_grad_params, max_tokens), F(hr_grad_params, kinds),
        F(hr_grad_params, select), F(hr_grad_params, input_grad), F(hr_grad_params, recompute);
    S(hr_pairs_params), F(hr_pairs_params, answers);
    S(hr_pair), F(hr_pair, clean), F(hr_pair, corrupt), F(hr_pair, n_tokens), F(hr_pair, answer), F(hr_pair, wrong),
        F(hr_pair, answer_tokens), F(hr_pair, wrong_tokens), F(hr_pair, line);
    S(hr_patch_params), F(hr_patch_params, what), F(hr_patch_params, metric), F(hr_patch_params, direction),
        F(hr_patch_params, path), F(hr_patch_params, path_mlps_recomputed), F(hr_patch_params, knockout),
        F(hr_patch_params, dla), F(hr_patch_params, lens), F(hr_patch_params, lens_top), F(hr_patch_params, lens_pairs),
        F(hr_patch_params, heads), F(hr_patch_params, calib_tokens), F(hr_patch_params, n_calib_tokens),
        F(hr_patch_params, n_threads), F(hr_patch_params, progress), F(hr_patch_params, progress_user_data);
    S(hr_patch_summary), F(hr_patch_summary, n_pairs), F(hr_patch_summary, n_layers), F(hr_patch_summary, max_heads),
        F(hr_patch_summary, n_positions), F(hr_patch_summary, metric), F(hr_patch_summary, direction),
        F(hr_patch_summary, labels), F(hr_patch_summary, clean), F(hr_patch_summary, corrupt),
        F(hr_patch_summary, pair_clean), F(hr_patch_summary, pair_corrupt), F(hr_patch_summary, heads),
        F(hr_patch_summary, attn), F(hr_patch_summary, mlp), F(hr_patch_summary, resid), F(hr_patch_summary, head_pos),
        F(hr_patch_summary, has_dla), F(hr_patch_summary, has_attn_bias), F(hr_patch_summary, has_norm_bias),
        F(hr_patch_summary, dla_total), F(hr_patch_summary, dla_sum), F(hr_patch_summary, dla_embed),
        F(hr_patch_summary, dla_norm_bias), F(hr_patch_summary, dla_heads), F(hr_patch_summary, dla_attn_bias),
        F(hr_patch_summary, dla_mlp), F(hr_patch_summary, has_lens), F(hr_patch_summary, lens_top),
        F(hr_patch_summary, lens_pairs), F(hr_patch_summary, lens_logit_diff), F(hr_patch_summary, lens_prob),
        F(hr_patch_summary, lens_rank), F(hr_patch_summary, lens_tokens), F(hr_patch_summary, path),
        F(hr_patch_summary, knockout), F(hr_patch_summary, path_heads), F(hr_patch_summary, path_value),
        F(hr_patch_summary, knockout_heads), F(hr_patch_summary, knockout_value), F(hr_patch_summary, forward_passes),
        F(hr_patch_summary, warning), F(hr_patch_summary, clean_top_answer), F(hr_patch_summary, clean_top_wrong);
    S(hr_patch_meta), F(hr_patch_meta, model_path), F(hr_patch_meta, pairs_path), F(hr_patch_meta, tok);
    S(hr_influence_doc), F(hr_influence_doc, index), F(hr_influence_doc, sha256), F(hr_influence_doc, n_tokens),
        F(hr_influence_doc, loss_base), F(hr_influence_doc, loss_masked), F(hr_influence_doc, influence);
    S(hr_influence_params), F(hr_influence_params, text), F(hr_influence_params, text_len),
        F(hr_influence_params, split), F(hr_influence_params, heads), F(hr_influence_params, calib_tokens),
        F(hr_influence_params, n_calib_tokens), F(hr_influence_params, max_tokens), F(hr_influence_params, first_doc),
        F(hr_influence_params, max_docs), F(hr_influence_params, n_threads), F(hr_influence_params, on_doc),
        F(hr_influence_params, user_data), F(hr_influence_params, progress), F(hr_influence_params, progress_user_data),
        F(hr_influence_params, corpus);
    S(hr_progress_info), F(hr_progress_info, phase), F(hr_progress_info, unit), F(hr_progress_info, done),
        F(hr_progress_info, total), F(hr_progress_info, step), F(hr_progress_info, n_steps);
    S(hr_train_params), F(hr_train_params, full), F(hr_train_params, lora_rank), F(hr_train_params, lora_alpha),
        F(hr_train_params, lora_targets), F(hr_train_params, only), F(hr_train_params, steps), F(hr_train_params, lr),
        F(hr_train_params, min_lr_ratio), F(hr_train_params, warmup), F(hr_train_params, beta1),
        F(hr_train_params, beta2), F(hr_train_params, eps), F(hr_train_params, weight_decay), F(hr_train_params, clip),
        F(hr_train_params, window), F(hr_train_params, batch), F(hr_train_params, accum), F(hr_train_params, heldout),
        F(hr_train_params, eval_every), F(hr_train_params, eval_windows), F(hr_train_params, seed),
        F(hr_train_params, n_threads), F(hr_train_params, recompute), F(hr_train_params, checkpoint),
        F(hr_train_params, checkpoint_every), F(hr_train_params, resume), F(hr_train_params, stop),
        F(hr_train_params, progress_phase), F(hr_train_params, progress_user_data),
        F(hr_train_params, lora_layer_ranks);
    S(hr_train_info), F(hr_train_info, step), F(hr_train_info, loss), F(hr_train_info, heldout_loss),
        F(hr_train_info, lr), F(hr_train_info, grad_norm), F(hr_train_info, tokens_per_s),
        F(hr_train_info, train_tokens), F(hr_train_info, heldout_tokens);
    return 0;
}
