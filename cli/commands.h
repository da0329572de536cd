/* Subcommand entry points: argv[0] is the subcommand name; the return value
 * is the process exit code. */
#ifndef HR_CLI_COMMANDS_H
#define HR_CLI_COMMANDS_H

int cmd_info(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_ppl(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_heads(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_gqa(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_patch(int argc, char **argv);
int cmd_influence(int argc, char **argv);
int cmd_finetune(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_successor(int argc, char **argv);

#endif
