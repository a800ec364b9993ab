// How both demos remove what they built: the lab's namespaces (saying
// which) and their scratch directory, in order or, from an exit handler,
// at once.
import { rmSync } from 'node:fs';
import { deleteNamespacesSync, namespaceOf, type NamespaceLab } from '../lab/index.js';
import { indent, say } from './output.js';

export async function removeLab(lab: NamespaceLab<string> | undefined, dir: string): Promise<void> {
  if (lab) {
    await lab.destroy();
    say(indent(`namespaces ${Object.values(lab.namespaces).join(', ')} deleted`));
  }
  rmSync(dir, { recursive: true, force: true });
}

/**
 * The last resort when the process leaves before removeLab() finished. A
 * lab still being created has no object yet: its namespaces are found by
 * the name it was given.
 */
export function removeLabNow(lab: NamespaceLab<string> | undefined, creating: { name: string; roles: readonly string[] } | undefined, dir: string): void {
  if (lab) lab.destroySync();
  else if (creating) deleteNamespacesSync(creating.roles.map((role) => namespaceOf(creating.name, role)));
  rmSync(dir, { recursive: true, force: true });
}
