"""Differential check of lpc's LSTM, GRU and RNN against ONNX Runtime on 115 generated
single-node models: every direction, sequence_lens (with a 0 length for LSTM/GRU), initial
states, peepholes, input_forget, linear_before_reset, clip, optional outputs, and every
activation with default and explicit alpha/beta. ONNX Runtime's CPU kernels refuse layout 1,
so only layout 0 is compared here (lpc-ref's own tests cover layout 1).

Usage (from the project root, after `cargo build -p lpc-cli`; needs onnx, onnxruntime, numpy):
    python3 tools/ort_recurrent_check.py [WORK_DIR]

Prints one line per case with max |lpc - ORT| / max(1, max |ORT|); exits 1 if any is above 1e-4.
"""
import os
import subprocess
import sys
import tempfile
import numpy as np
import onnx
import onnxruntime as ort
from onnx import helper, TensorProto, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LPC = os.path.join(ROOT, "target", "debug", "lpc")
D = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="lpc-rnn-")
BAD = []
rng=np.random.default_rng(7)
def case(idx, op, direction='forward', acts=None, alpha=None, beta=None, clip=None, lens=None, h0=False, c0=False, P=False, extra={}, outs=('Y','Y_h','Y_c')):
    S,B,I,H=5,3,4,3
    G={'LSTM':4,'GRU':3,'RNN':1}[op]; nd=2 if direction=='bidirectional' else 1
    inits=[]; names=['X']
    def add(name, arr):
        inits.append(numpy_helper.from_array(arr, name)); names.append(name)
    add('W', rng.uniform(-1,1,(nd,G*H,I)).astype(np.float32))
    add('R', rng.uniform(-1,1,(nd,G*H,H)).astype(np.float32))
    add('B', rng.uniform(-1,1,(nd,2*G*H)).astype(np.float32))
    if lens is not None: add('L', np.array(lens,np.int32))
    else: names.append('')
    if h0: add('H0', rng.uniform(-1,1,(nd,B,H)).astype(np.float32))
    else: names.append('')
    if op=='LSTM':
        if c0: add('C0', rng.uniform(-1,1,(nd,B,H)).astype(np.float32))
        else: names.append('')
        if P: add('P', rng.uniform(-1,1,(nd,3*H)).astype(np.float32))
    while names and names[-1]=='': names.pop()
    attrs=dict(hidden_size=H, direction=direction, **extra)
    if acts: attrs['activations']=acts
    if alpha: attrs['activation_alpha']=alpha
    if beta: attrs['activation_beta']=beta
    if clip: attrs['clip']=clip
    nouts=3 if op=='LSTM' else 2
    onames=[o if o in outs else '' for o in ('Y','Y_h','Y_c')[:nouts]]
    while onames[-1]=='': onames.pop()
    node=helper.make_node(op, names, onames, **attrs)
    gouts=[helper.make_tensor_value_info(o,TensorProto.FLOAT,None) for o in onames if o]
    g=helper.make_graph([node],'g',[helper.make_tensor_value_info('X',TensorProto.FLOAT,[S,B,I])],gouts,inits)
    m=helper.make_model(g,opset_imports=[helper.make_opsetid('',14)]); m.ir_version=8
    p=f'{D}/m{idx}.onnx'; onnx.save(m,p)
    x=rng.uniform(-2,2,(S,B,I)).astype(np.float32); np.save(f'{D}/x{idx}.npy',x)
    want=ort.InferenceSession(p,providers=['CPUExecutionProvider']).run(None,{'X':x})
    od=f'{D}/o{idx}'
    r=subprocess.run([LPC,'run',p,'--input',f'X={D}/x{idx}.npy','--output-dir',od],capture_output=True,text=True)
    if r.returncode: print(idx, op, 'LPC FAIL', r.stderr.strip()); BAD.append(idx); return
    worst=0
    for o,w in zip([o for o in onames if o],want):
        a=np.load(f'{od}/{o}.npy'); 
        if a.shape!=w.shape: print(idx,'shape',o,a.shape,w.shape); worst=1; continue
        worst=max(worst,np.abs(a-w).max()/max(1.0,np.abs(w).max()))
    print(idx, op, direction, acts, alpha, beta, clip, lens, extra, 'max|d|=%.2e'%worst, 'BAD' if worst>1e-4 else '')
    if worst > 1e-4: BAD.append(idx)
i=0
for op in ['LSTM','GRU','RNN']:
    for d in ['forward','reverse','bidirectional']:
        for lens in [None,[5,2,1]] + ([[5,0,3]] if op!='RNN' else []):
            i+=1; case(i,op,d,lens=lens,h0=True,c0=True,P=(op=='LSTM'))
nd=lambda d: 2 if d=='bidirectional' else 1
acts={'LSTM':[['HardSigmoid','Elu','Softsign'],['Sigmoid','ScaledTanh','Softplus'],['LeakyRelu','Tanh','Affine'],['sigmoid','thresholdedrelu','relu']],
      'GRU':[['HardSigmoid','Softsign'],['LeakyRelu','ScaledTanh'],['Sigmoid','Affine'],['Elu','ThresholdedRelu'],['Softplus','Relu']],
      'RNN':[['Relu'],['LeakyRelu'],['Affine'],['ScaledTanh'],['ThresholdedRelu'],['Elu'],['Softsign'],['Softplus'],['HardSigmoid'],['Sigmoid']]}
for op in ['LSTM','GRU','RNN']:
    for a in acts[op]:
        for d in ['forward','bidirectional']:
            i+=1; full=a*nd(d)
            case(i,op,d,acts=full,h0=True)
            i+=1; case(i,op,d,acts=full,alpha=[0.3,0.7,1.2,0.4,0.9,1.1][:len(full)],beta=[0.2,0.5,0.6,0.1,0.3,0.8][:len(full)],h0=True)
for op in ['LSTM','GRU','RNN']:
    i+=1; case(i,op,'bidirectional',clip=0.7,lens=[4,5,2],h0=True)
i+=1; case(i,'LSTM','reverse',extra={'input_forget':1},lens=[3,5,1],h0=True,c0=True,P=True)
i+=1; case(i,'LSTM','bidirectional',extra={'input_forget':1},clip=1.5,P=True)
for lbr in [0,1]:
    for d in ['forward','reverse','bidirectional']:
        i+=1; case(i,'GRU',d,extra={'linear_before_reset':lbr},lens=[2,5,4],h0=True)
i+=1; case(i,'LSTM','forward',outs=('Y_h',)); i+=1; case(i,'LSTM','forward',outs=('Y_c',)); i+=1; case(i,'GRU','reverse',outs=('Y',)); i+=1; case(i,'RNN','bidirectional',outs=('Y_h',))

print(f'{i - len(BAD)} of {i} cases within 1e-4')
sys.exit(1 if BAD else 0)
