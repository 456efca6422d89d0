/** The kubelet stand-in (devstack/kubelet-stand-in.ts) on the test stack's kube-apiserver. */
import { CoreV1Api } from '@kubernetes/client-node';
import { inject } from 'vitest';
import { startKubeletStandIn, type KubeletStandIn } from '../../devstack/kubelet-stand-in.js';
import { kubeConfigFromFile } from '../../remediation/kube.js';

export type { KubeletStandIn };

export function startKubelet(): Promise<KubeletStandIn> {
  return startKubeletStandIn(kubeConfigFromFile(inject('kubeconfigPath')).makeApiClient(CoreV1Api));
}
