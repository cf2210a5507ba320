/**
 * `delete`'s own entry: the bundle flavour's launcher runs it (as `js/delete/delete.js`, which holds all `delete`
 * loads in the common case) when containerd's command line ends with `delete`, which it does after every task.
 * Anything else it is given goes to main.ts.
 *
 * @module
 */
import { exitWith, handles, print, runMain } from "./command_main.ts";
import { deleteTask } from "./delete.ts";
import { parseShimArgs } from "./flags.ts";

await exitWith(async () => {
  const a = parseShimArgs(Deno.args, (k) => Deno.env.get(k));
  if (!handles(a, "delete")) return await runMain(import.meta.url);
  print(await deleteTask(a));
  return 0;
});
