// The network setup as the commands need it: the model's setup, and the files rendered from the
// templates shipped in this package (read here: they are part of guestwall, not user input).
import { readFileSync } from 'node:fs';
import { templateFile } from '../apply/install.js';
import { type NetworkFile, type NetworkTemplates, networkFiles } from '../emit/network-files.js';
import { type NetworkSetup, networkSetup } from '../emit/network.js';
import { planNetwork, pristineHost } from '../emit/network-plan.js';
import type { HostModel } from '../model/host.js';

export function readNetworkTemplates(): NetworkTemplates {
  const read = (rel: string) => readFileSync(templateFile(rel), 'utf8');
  return { portUp: read('hooks/port-up'), portDown: read('hooks/port-down'), xenVif: read('hooks/xen-vif'), networkUnit: read('guestwall-network.service') };
}

/** The setup, its files, and plan.json (the setup and every step a host with all its interfaces and nothing configured would run). */
export function networkOutput(model: HostModel, templates: NetworkTemplates = readNetworkTemplates()): { setup: NetworkSetup; files: NetworkFile[]; planJson: string } {
  const setup = networkSetup(model);
  const plan = planNetwork(setup, pristineHost(setup));
  return { setup, files: networkFiles(setup, templates), planJson: `${JSON.stringify({ setup, steps: plan.steps }, null, 1)}\n` };
}
