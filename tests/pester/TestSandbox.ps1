# Dot-sourced by the Pester files that send real packets: two network namespaces of the test's own,
# bpft-<id>-tx and bpft-<id>-rx, joined by the veth pair bpft<id>0 (in tx) and bpft<id>1 (in rx).

function Invoke-Ip {
    & /usr/bin/env ip @args
    if ($LASTEXITCODE -ne 0) { throw "ip $args failed" }
}

function New-TestSandbox([string] $Subnet = '10.202.0') {
    $id = [guid]::NewGuid().ToString('N').Substring(0, 6)
    $sandbox = [pscustomobject]@{
        Id = $id; Tx = "bpft-$id-tx"; Rx = "bpft-$id-rx"; TxIf = "bpft${id}0"; RxIf = "bpft${id}1"
        TxAddress = "$Subnet.1"; RxAddress = "$Subnet.2"
    }
    try {
        Invoke-Ip netns add $sandbox.Tx
        Invoke-Ip netns add $sandbox.Rx
        Invoke-Ip link add $sandbox.TxIf netns $sandbox.Tx type veth peer name $sandbox.RxIf netns $sandbox.Rx
        Invoke-Ip -n $sandbox.Tx addr add "$($sandbox.TxAddress)/24" dev $sandbox.TxIf
        Invoke-Ip -n $sandbox.Rx addr add "$($sandbox.RxAddress)/24" dev $sandbox.RxIf
        Invoke-Ip -n $sandbox.Tx link set $sandbox.TxIf up
        Invoke-Ip -n $sandbox.Rx link set $sandbox.RxIf up
    }
    catch {
        Remove-TestSandbox $sandbox
        throw
    }
    $sandbox
}

function Remove-TestSandbox($Sandbox) {
    foreach ($ns in $Sandbox.Tx, $Sandbox.Rx) { if (Test-Path "/run/netns/$ns") { & /usr/bin/env ip netns delete $ns } }
}

# Sends UDP datagrams from the sandbox's tx namespace with bash's /dev/udp: nothing beyond bash and iproute2.
function Send-TestUdp($Sandbox, [int] $Port, [int] $Count) {
    & /usr/bin/env ip netns exec $Sandbox.Tx bash -c "for i in `$(seq $Count); do echo payload > /dev/udp/$($Sandbox.RxAddress)/$Port; done"
}
