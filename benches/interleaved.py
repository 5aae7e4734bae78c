"""Two or more builds of the server, compared in one run: the nested accounts → contacts query
of issue 19 (50/10, 5/5, 100/20), sent to each server in turn, three rounds of each, by 8
client threads, so that a change of the VM's speed between runs does not read as a change of
the build. Prints requests/s and the server's CPU ms per request (from /proc) per round.

Start each build with `serve --listen 127.0.0.1:PORT` on the same database (for example one
filled by `seed --contacts 100000`, then spread over 2,000 accounts), and a `contacts:read`
key of its tenant in KEY:

    KEY=sk-... python3 benches/interleaved.py base:8201:PID1 new:8202:PID2
"""
import http.client, json, os, sys, threading, time

KEY=os.environ['KEY']
Q='{ accounts(first: %d, orderBy: [{field: CREATED_AT, direction: DESC}]) { totalCount edges { cursor node { id name contacts(first: %d) { totalCount nodes { id firstName lastName email phone tags { name } } } } } } }'
def cpu(pid):
    f=open(f'/proc/{pid}/stat').read().split(')')[1].split()
    return (int(f[11])+int(f[12]))/os.sysconf('SC_CLK_TCK')
def load(port, body, n, conc=8):
    cnt=[0]; lock=threading.Lock()
    def w():
        c=http.client.HTTPConnection('127.0.0.1',port)
        while True:
            with lock:
                if cnt[0]>=n: return
                cnt[0]+=1
            c.request('POST','/graphql',body,{'content-type':'application/json','authorization':'Bearer '+KEY})
            r=c.getresponse(); d=r.read()
            assert r.status==200 and b'"errors"' not in d, d[:300]
    ts=[threading.Thread(target=w) for _ in range(conc)]
    s=time.time(); [t.start() for t in ts]; [t.join() for t in ts]
    return n/(time.time()-s)
servers=[(name,int(port),int(pid)) for name,port,pid in (a.split(':') for a in sys.argv[1:])]
for a,cn,n in [(50,10,200),(5,5,600),(100,20,60)]:
    body=json.dumps({'query':Q%(a,cn)})
    for name,port,pid in servers: load(port, body, 20)
    res={}
    for rnd in range(3):
        for name,port,pid in servers:
            c0=cpu(pid); rps=load(port, body, n); c1=cpu(pid)
            res.setdefault(name,[]).append((rps,(c1-c0)/n*1000))
    for name in res:
        print(f"{a}/{cn} {name}: req/s", " ".join("%.0f"%r for r,_ in res[name]), " cpu ms/req", " ".join("%.2f"%c for _,c in res[name]))
