// Who may approve a waiting deployment, as the API decides it: the stage's
// approval role (release-manager when unset) from the release's snapshot,
// and never the requester unless the stage allows self-approval.
import { get, enc } from '../api.js';
import { session, hasRole } from '../session.js';

const snapshots = new Map();  // "app/release" -> the release's snapshot (a promise)

function snapshotOf(app, release) {
  const key = `${app}/${release}`;
  if (!snapshots.has(key)) {
    snapshots.set(key, get(`/applications/${enc(app)}/releases/${enc(release)}`)
      .then((r) => r.snapshot || {}).catch(() => ({})));
  }
  return snapshots.get(key);
}

// Why the signed-in user may not approve or reject `d`, or null.
export async function approvalRefusal(d) {
  const s = session();
  const snapshot = await snapshotOf(d.application, d.release);
  const stage = (snapshot.pipeline || []).find((p) => p.stage === d.stage) || {};
  const gates = stage.gates || {};
  const role = (gates.approvals && gates.approvals.role) || 'release-manager';
  if (!hasRole(role)) return `Approving deployments to ${d.stage} needs the ${role} role.`;
  if (s && d.requested_by === s.user && !gates.allow_self_approval) {
    return 'You requested this deployment: another user approves it.';
  }
  return null;
}
