#!/usr/bin/env python3
"""An independent NumPy check of oracle 7 (ntk-family contract §7, Neural Tangent Transfer),
for Tests/PKAnalysisTests/NeuralTangentTransferTests.swift.

Explicit per-example Jacobians by backpropagation, the cross NTK as J₁J₂ᵀ (nothing of the
Swift code's factored form), the gradient of L by central differences (h = 1e-5, so ‖∇L‖ and
the Adam steps agree with the contract to ~1e-9, not 1e-10), Adam as torch.optim.Adam, and the
magnitude rule. It also prints the kernel term under the other reading of Θ̂_{M⊙s}, J diag(M) Jᵀ,
which does *not* give the contract's numbers: the contract's kernel differentiates with respect
to every entry of u = M ⊙ s. Mask changes are a symmetric difference (2, 6, 2; the swaps are
1, 3, 1). Needs only NumPy:
    python3 Tools/reference/ntt_oracle.py
"""
import numpy as np
layers=[3,8,6,2]; sw,sb=1.5,0.1
P=sum(layers[i]*layers[i+1]+layers[i+1] for i in range(3))
k=np.arange(P); wT=np.sqrt(2)*np.sin(1.7*k+0.3)
x1=np.array([0.9,-0.3,0.4]); x2=np.array([0.1,1.2,-0.5]); x3=np.array([-0.7,0.2,0.6])
X=np.array([x1,x2,x3,-x1/2,[0.3,0.3,-0.9],[1.1,0.4,0.2]])
def unpack(w):
    o=0; out=[]
    for l in range(3):
        di,do=layers[l],layers[l+1]
        W=w[o:o+di*do].reshape(do,di); o+=di*do
        b=w[o:o+do]; o+=do
        out.append((W,b,sw/np.sqrt(di)))
    return out
def fwd(w,X):
    a=X
    for l,(W,b,s) in enumerate(unpack(w)):
        z=s*a@W.T+sb*b
        a=np.tanh(z) if l<2 else z
    return a
def jac(w,X,h=1e-6):
    # exact via backprop
    ps=unpack(w); n=X.shape[0]; C=2
    acts=[X]; zs=[]
    a=X
    for l,(W,b,s) in enumerate(ps):
        z=s*a@W.T+sb*b; zs.append(z)
        a=np.tanh(z) if l<2 else z
        acts.append(a)
    J=np.zeros((n*C,P))
    for c in range(C):
        d=np.zeros((n,C)); d[:,c]=1
        grads=[None]*3
        for l in (2,1,0):
            W,b,s=ps[l]
            gW=s*np.einsum('ri,rj->rij',d,acts[l]).reshape(n,-1); gb=sb*d
            grads[l]=np.concatenate([gW,gb],1)
            if l>0:
                d=(s*d@W)*(1-np.tanh(zs[l-1])**2)
        J[c::C]=np.concatenate(grads,1)
    return J
mask=np.ones(P); wmask_idx=[]
o=0
for l in range(3):
    di,do=layers[l],layers[l+1]; S=di*do
    kk=int(np.floor(0.5*S+0.5))
    order=sorted(range(S),key=lambda i:(-abs(wT[o+i]),i))
    m=np.zeros(S); m[order[:kk]]=1
    mask[o:o+S]=m; wmask_idx.append((o,S)); o+=S+do
isw=np.zeros(P,bool)
for (o,S) in wmask_idx: isw[o:o+S]=True
print('kept per layer', [int(mask[o:o+S].sum()) for o,S in wmask_idx])
s=wT+0.3*np.sin(0.37*k)*mask
lamK,lam2,rho=0.1,1e-4,0.5
def terms(s,mode):
    u=mask*s; n=6;n1=3;C=2
    Js=jac(u,X); Jt=jac(wT,X)
    if mode=='masked': Js=Js*mask
    Ts=Js[:n1*C]@Js[n1*C:].T; Tt=Jt[:n1*C]@Jt[n1*C:].T
    kt=np.sum((Ts-Tt)**2)/(n1*(n-n1)*C*C)
    tt=np.sum((fwd(u,X)-fwd(wT,X))**2)/(n*C)
    l2=np.sum((u*isw)**2)
    return kt,tt,l2,lamK*kt+tt+lam2/rho*l2, np.linalg.norm(Ts-Tt)/np.linalg.norm(Tt)
for mode in ['full','masked']:
    print('J over all of u (contract)' if mode == 'full' else 'J diag(M) Jᵀ (not the contract)',
          '— kernel, target, ‖M⊙s‖², L, relative distance:', [float(v) for v in terms(s, mode)])
mode='full'
L=lambda s:terms(s,mode)[3]
def grad(s,h=1e-5):
    g=np.zeros(P)
    for i in range(P):
        e=np.zeros(P);e[i]=h
        g[i]=(L(s+e)-L(s-e))/(2*h)
    return g
g=grad(s); print('‖∇L‖ (central differences)', np.linalg.norm(g), '; largest |gradient| of a pruned entry', np.abs(g[mask==0]).max())
m=np.zeros(P);v=np.zeros(P); ss=s.copy()
for t in range(3):
    g=grad(ss)
    m=0.9*m+0.1*g; v=0.999*v+0.001*g*g
    mh=m/(1-0.9**(t+1)); den=np.sqrt(v)/np.sqrt(1-0.999**(t+1))+1e-8
    ss=ss-0.01*mh/den
    print('L after Adam step', t + 1, L(ss))
o=0
for l in range(3):
    di,do=layers[l],layers[l+1]; S=di*do
    kk=int(np.floor(0.5*S+0.5))
    order=sorted(range(S),key=lambda i:(-abs(ss[o+i]),i))
    mm=np.zeros(S); mm[order[:kk]]=1
    print("mask changes (symmetric difference, swaps)", int(np.sum(mm != mask[o:o+S])), int(np.sum((mm == 1) & (mask[o:o+S] == 0))))
    o+=S+do
