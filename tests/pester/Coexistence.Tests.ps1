# Bpfilter next to a module that brought another YamlDotNet: in both orders, each side keeps its own version.
# Each case runs in a fresh pwsh, since an assembly once loaded stays loaded.

BeforeAll {
    $module = if ($env:BPFILTER_MODULE) { $env:BPFILTER_MODULE } else { Join-Path $PSScriptRoot '../../out/Bpfilter/Bpfilter.psd1' }
    $script:module = (Resolve-Path $module).Path
    $script:repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $packages = ((dotnet nuget locals global-packages --list) -replace '^global-packages:\s*', '').Trim()
    $script:otherYaml = Join-Path $packages 'yamldotnet/13.7.1/lib/net7.0/YamlDotNet.dll'   # restored by Pester.Download.csproj
    $script:demo = Join-Path $repo 'samples/demo.yaml'

    function Invoke-Fresh([string] $Script) {
        Push-Location $repo
        try { & dotnet pwsh -NoProfile -NonInteractive -Command "`$ErrorActionPreference = 'Stop'; $Script" 2>&1 | ForEach-Object ToString }
        finally { Pop-Location }
    }

    # Uses the other YamlDotNet for real: its deserializer parses a document.
    $script:useOther = "[YamlDotNet.Serialization.Deserializer]::new().Deserialize[object]('a: 1')['a']; [YamlDotNet.Serialization.Deserializer].Assembly.GetName().Version.ToString()"
    $script:useBpfilter = "(Import-BpfRuleset '$demo').Chains[0].Rules.Count"
}

Describe 'Bpfilter and another YamlDotNet in one session' {
    It 'works when the other YamlDotNet was loaded first' {
        $out = Invoke-Fresh "Add-Type -Path '$otherYaml'; Import-Module '$module'; $useBpfilter; $useOther"
        $out | Should -Be @('3', '1', '13.0.0.0')   # YamlDotNet 13.7.1 carries assembly version 13.0.0.0; Bpfilter's is 16
    }

    It 'works when Bpfilter was imported first' {
        $out = Invoke-Fresh "Import-Module '$module'; $useBpfilter; Add-Type -Path '$otherYaml'; $useOther; $useBpfilter"
        $out | Should -Be @('3', '1', '13.0.0.0', '3')
    }

    It 'keeps its own YamlDotNet in a load context of its own' {
        $out = Invoke-Fresh ("Import-Module '$module'; `$null = Import-BpfRuleset '$demo'; " +
            "[AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { `$_.GetName().Name -in 'YamlDotNet', 'Bpfilter.Engine' } | " +
            "ForEach-Object { '{0} {1}' -f `$_.GetName().Name, [System.Runtime.Loader.AssemblyLoadContext]::GetLoadContext(`$_).Name } | Sort-Object")
        $out | Should -Be @('Bpfilter.Engine Bpfilter.Dependencies', 'YamlDotNet Bpfilter.Dependencies')
    }

    It 'does no kernel or BTF work at import' {
        # The kernel facts the engine caches (the BTF of vmlinux, the possible CPUs) are read on first use only.
        $lazy = { param($type, $field) "[type]'Bpfilter.Engine.Kernel.$type, Bpfilter.Engine' | ForEach-Object { `$_.GetField('$field', [Reflection.BindingFlags]'NonPublic,Static').GetValue(`$null).IsValueCreated }" }
        $out = Invoke-Fresh ("Import-Module '$module'; $(& $lazy Btf Functions); $(& $lazy PossibleCpus LazyCount)")
        $out | Should -Be @('False', 'False')
    }
}
