<#
.SYNOPSIS
    Sends the demo's traffic from inside the bpfd-tx namespace (started there with 'ip netns exec').
    One kind of packet for each rule of samples/demo.yaml, and one that only the policy decides.
#>
param([string] $Target = '10.200.0.2')

$ErrorActionPreference = 'Stop'
$to = [ipaddress]$Target

function Send-Udp([string] $From, [int] $Port, [int] $Count) {
    $client = [System.Net.Sockets.UdpClient]::new([System.Net.IPEndPoint]::new([ipaddress]$From, 0))
    try {
        $payload = [byte[]]::new(18)
        1..$Count | ForEach-Object { [void]$client.Send($payload, $payload.Length, [System.Net.IPEndPoint]::new($to, $Port)) }
    } finally { $client.Dispose() }
    "sent $Count UDP datagrams from $From to ${Target}:$Port"
}

Send-Udp -From 10.200.0.66 -Port 5000 -Count 5      # drop-blocked-host
$tcp = [System.Net.Sockets.TcpClient]::new()
$answered = $tcp.ConnectAsync($to, 23).Wait(1500)   # no-telnet: the SYN and its retry are dropped
$tcp.Dispose()
"TCP connection to ${Target}:23 $(if ($answered) { 'answered' } else { 'got no answer (dropped)' })"
Send-Udp -From 10.200.0.1 -Port 53 -Count 5         # allow-dns
Send-Udp -From 10.200.0.1 -Port 9 -Count 5          # no rule matches: the policy decides
