# Every example in README.md runs: its PowerShell blocks and its YAML, as a reader would paste them, with the
# demo's names (bpfd-rx, bpfd1, demo, quick) swapped for a sandbox and deployments of this test's own.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    Import-Module $module -Force
    $script:module = (Resolve-Path $module).Path
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $readme = Get-Content (Join-Path $repo 'README.md') -Raw
    $script:blocks = [regex]::Matches($readme, '(?ms)^```(\w+)\r?\n(.*?)^```') | ForEach-Object { [pscustomobject]@{ Language = $_.Groups[1].Value; Text = $_.Groups[2].Value } }

    . (Join-Path $PSScriptRoot 'TestSandbox.ps1')
    $script:sandbox = New-TestSandbox -Subnet 10.205.0
    $script:rx = $sandbox.Rx; $script:rxIf = $sandbox.RxIf
    $script:names = @{ demo = "bpft-r$($sandbox.Id)"; quick = "bpft-q$($sandbox.Id)"; web = "bpft-w$($sandbox.Id)" }

    # The demo ruleset with this sandbox's interface and name, where the README's examples read it.
    $script:demoYaml = Join-Path $TestDrive 'demo.yaml'
    function ConvertTo-Sandbox([string] $Text) {
        $Text -replace 'bpfd-rx', $rx -replace 'bpfd1', $rxIf -replace '(?<=name: |-Name )demo\b', $names.demo -replace '(?<=-Name )quick\b', $names.quick `
            -replace '(?<=-Name )web\b', $names.web -replace '\./samples/web\.rules', (Join-Path $repo 'samples/web.rules') `
            -replace '\./samples/demo\.yaml', $demoYaml -replace '\./out/Bpfilter/Bpfilter\.psd1', $module
    }
    ConvertTo-Sandbox (Get-Content (Join-Path $repo 'samples/demo.yaml') -Raw) | Set-Content $demoYaml
}

AfterAll {
    foreach ($n in $names.Values) { if (Test-Path "/sys/fs/bpf/bpfilter/$n") { Unpublish-BpfProgram -Name $n -ErrorAction Continue } }
    Remove-TestSandbox $sandbox
}

Describe 'README examples' {
    It 'has the examples this test knows how to run' {
        ($blocks | Where-Object Language -EQ 'powershell').Count | Should -Be 3
        ($blocks | Where-Object Language -EQ 'yaml').Count | Should -Be 1
    }

    It 'runs the opening example: import, list, publish, counters, unpublish, publish rule objects' {
        $script = ConvertTo-Sandbox ($blocks | Where-Object Language -EQ 'powershell' | Select-Object -First 1).Text
        $output = & ([scriptblock]::Create($script))
        $output | Where-Object { $_ -is [Bpfilter.Engine.Deployment.CounterRow, Bpfilter.Engine] } | Should -Not -BeNullOrEmpty
        (Get-BpfChain -Name $names.quick).Chain | Should -Be 'INPUT'
        "/sys/fs/bpf/bpfilter/$($names.demo)" | Should -Not -Exist
        Unpublish-BpfProgram -Name $names.quick
    }

    It 'runs the iptables-save example: import the dump at xdp, publish, counters and log' {
        $script = ConvertTo-Sandbox ($blocks | Where-Object Language -EQ 'powershell' | Select-Object -Skip 1 -First 1).Text
        $output = & ([scriptblock]::Create($script)) | Out-String
        $output | Should -Match 'banned host'
        $rows = @(Get-BpfCounter -Name $names.web)
        $rows.Rule | Should -Contain 'no telnet'
        $rows.Rule | Should -Contain 'banned host'
        (Get-BpfChain -Name $names.web | Where-Object Chain -EQ INPUT).Hook | Should -Be 'Xdp'
        Unpublish-BpfProgram -Name $names.web
    }

    It 'shows a ruleset that reads as the demo ruleset' {
        $yaml = ConvertTo-Sandbox ($blocks | Where-Object Language -EQ 'yaml').Text
        Set-Content "$TestDrive/readme.yaml" $yaml
        $fromReadme = Import-BpfRuleset "$TestDrive/readme.yaml"
        $demo = Import-BpfRuleset $demoYaml
        ($fromReadme.Chains[0].Rules | ForEach-Object ToString) | Should -Be ($demo.Chains[0].Rules | ForEach-Object ToString)
        $fromReadme.Chains[0].Policy | Should -Be $demo.Chains[0].Policy
    }

    It 'runs the Pester line of the cmdlets section' {
        $line = [regex]::Match((Get-Content (Join-Path $repo 'README.md') -Raw), '`(Test-BpfPacket [^`]+)`').Groups[1].Value
        $line | Should -Not -BeNullOrEmpty
        $rs = Import-BpfRuleset $demoYaml
        & ([scriptblock]::Create($line))   # Should throws when the verdict is wrong
    }

    It 'runs the package install example in a HOME of its own' {
        Push-Location $repo
        try { & dotnet pwsh -NoProfile -NonInteractive -File ./build.ps1 Package | Out-Null } finally { Pop-Location }
        $script = ($blocks | Where-Object Language -EQ 'powershell' | Select-Object -Last 1).Text + "`n(Get-Module Bpfilter).Version.ToString()"
        $info = [System.Diagnostics.ProcessStartInfo]::new('dotnet')
        foreach ($a in 'pwsh', '-NoProfile', '-NonInteractive', '-Command', $script) { $info.ArgumentList.Add($a) }
        $info.WorkingDirectory = $repo
        $info.Environment['HOME'] = (New-Item -ItemType Directory -Path "$TestDrive/home").FullName
        $info.Environment['NUGET_PACKAGES'] = ((dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim()
        $info.Environment['DOTNET_CLI_HOME'] = $env:HOME
        $info.RedirectStandardOutput = $true
        $info.RedirectStandardError = $true
        $p = [System.Diagnostics.Process]::Start($info)
        $out = $p.StandardOutput.ReadToEnd().Trim()
        $err = $p.StandardError.ReadToEnd()
        $p.WaitForExit()
        $err | Should -BeNullOrEmpty
        $out | Should -Be (Import-PowerShellDataFile (Join-Path $repo 'Bpfilter.psd1')).ModuleVersion
    }
}
